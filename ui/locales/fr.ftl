# Français. Needs review by a native speaker.
language-name = Français
language-code = fr
language-fallback = en
app-title = Notes
skip-to-content = Aller au contenu
quick-exit = Sortir
quick-exit-hint = Partir tout de suite (Échap) : affiche une page vide et verrouille
nav-label = Principal
nav-alerts = Alertes
nav-check = Vérifier
nav-post = Publier
nav-status = État
nav-moderate = Modérer
nav-sheet = Imprimer
language = Langue
language-switch = Changer
error-title = Cela n’a pas marché
error-back = Retour
done-posted = Publié. L’alerte part vers les autres membres.
done-retracted = L’alerte est retirée pour tout le monde.
done-corroborated = Merci. Votre témoignage est ajouté.
done-unlocked = Déverrouillé.
feed-title = Alertes
feed-empty = Aucune alerte pour l’instant.
feed-new = La liste a été mise à jour.
alerts-count = { $n ->
    [one] { $n } alerte
   *[other] { $n } alertes
}
filter-area = Quartier
filter-group = Sujet
filter-all = Tout
filter-time = Publié
filter-any-time = Toujours
filter-24h = Dernières 24 heures
filter-7d = 7 derniers jours
filter-30d = 30 derniers jours
filter-apply = Afficher
group-client = Clients
group-police = Police
severity-low = Faible
severity-medium = Moyen
severity-high = Élevé
severity-critical = Critique
category-violence = Violence
category-sexual-assault = Agression sexuelle
category-robbery = Vol
category-non-payment = N’a pas payé
category-condom-removal = A retiré le préservatif
category-threats = Menaces
category-drugging = Drogue à l’insu
category-fake-client = Faux client
category-time-waster = Fait perdre du temps
category-police-raid = Descente de police
category-police-harassment = Harcèlement policier
category-other = Autre
corroborate = Ça m’est arrivé aussi
retract = Retirer cette alerte
retract-confirm-title = Retirer l’alerte publiée par { $value } ?
retract-confirm-posted = Publiée par { $who } le { $value }
retract-confirm-warning = Elle est retirée pour tous les membres, qui voient que c’est vous. Vérifiez que c’est la bonne alerte.
retract-confirm = Oui, retirer cette alerte
retract-unknown = Aucune alerte active n’a cet identifiant : elle a peut-être été retirée ou a expiré.
check-title = Vérifier
check-label = Ce numéro, cette plaque ou ce nom est-il dans une alerte ?
check-button = Vérifier
check-none = Rien trouvé pour « { $value } ».
check-found = { $n ->
    [one] Attention : 1 alerte correspond.
   *[other] Attention : { $n } alertes correspondent.
}
post-title = Publier une alerte
post-category = Que s’est-il passé ?
post-choose = Choisir…
post-severity = Quel danger ?
post-description = Racontez ce qui s’est passé
post-phone = Numéro de téléphone
post-plate = Plaque
post-name = Nom ou surnom
post-area = Où
post-when = Quand
post-when-day = Ou le jour où c’est arrivé
post-when-time = Heure ce jour-là (facultatif)
post-when-future = Ce jour ou cette heure est dans le futur : indiquez quand c’est arrivé.
post-when-too-old = Ce jour date de plus d’un an : les alertes servent pour un danger récent. Vérifiez l’année.
post-when-unreadable = Impossible de lire ce jour ou cette heure : choisissez-le dans le calendrier.
post-submit = Publier l’alerte
when-now = À l’instant
when-yesterday = Hier
status-title = État
status-members = Membres
status-alerts = Alertes
members-title = Membres
approve-button = Approuver
cancel = Annuler
unlock-title = Verrouillé
unlock-passphrase = Phrase secrète
unlock-button = Déverrouiller
unlock-wrong = Phrase secrète incorrecte. Réessayez.
done-founded = Votre groupe est prêt. Vous en êtes la première personne modératrice.
done-joined = Invitation enregistrée. Vous serez membre quand une personne qui modère aura approuvé votre code pour rejoindre : si vous ne le lui avez pas encore montré, faites-le maintenant. Votre appareil récupère la liste des membres et les alertes ; à côté de votre nom, cette page indique « membre » une fois que vous êtes admise.
welcome-title = Bienvenue
welcome-intro = Cet appareil n’a pas encore d’identité. Choisissez un nom et une phrase secrète.
welcome-name = Votre nom dans le groupe
welcome-name-hint = Un surnom, c’est mieux. Les autres membres le voient.
welcome-passphrase = Choisissez une phrase secrète
welcome-passphrase-hint = Il vous la faut à chaque fois. Personne ne peut la retrouver. Le mieux : quatre ou cinq mots sans rapport entre eux.
welcome-again = Tapez la phrase secrète encore une fois
welcome-button = Créer mon identité
welcome-need-name = Choisissez un nom.
welcome-passphrases-differ = Les deux phrases secrètes ne sont pas les mêmes. Rien n’a été créé.
welcome-too-weak = Cette phrase secrète est facile à deviner. Quelqu’un qui prend cet appareil pourrait la trouver. Choisissez quatre ou cinq mots sans rapport. Rien n’a été créé.
strength-0 = Très facile à deviner
strength-1 = Facile à deviner
strength-2 = Encore trop facile à deviner
strength-3 = Difficile à deviner
strength-4 = Très difficile à deviner
enrol-title = Bonjour, { $value }
certificate-title = Votre code d’urgence
certificate-hint = Si cet appareil est perdu ou pris, n’importe quel membre peut utiliser ce code pour bloquer votre identité. Notez-le ou gardez-le loin de cet appareil. Il n’est montré que maintenant.
found-title = Créer un nouveau groupe
found-hint = Vous devenez modératrice du groupe. Ensuite, vous approuvez les personnes qui demandent à entrer.
found-name = Nom du groupe
found-country = Pays des numéros du groupe, deux lettres (TL Timor oriental, PT Portugal, BR Brésil, FR France…) : les numéros écrits sans + sont lus pour ce pays
found-button = Créer le groupe
found-need-name = Donnez un nom au groupe.
alert-phone-unverified = { $value } (tel que tapé, non vérifié)
post-phone-letters = Le numéro « { $value } » contient des lettres : tapez seulement des chiffres (la lettre O n’est pas un 0). Pour le garder tel quel, marqué non vérifié, cochez « Garder le numéro tel que je l’ai tapé ».
post-phone-invalid = « { $value } » n’est pas un numéro valable pour le pays du groupe : vérifiez les chiffres, ou écrivez-le avec + et l’indicatif du pays. Pour le garder tel quel, marqué non vérifié, cochez « Garder le numéro tel que je l’ai tapé ».
check-not-proof = Cela ne prouve pas que la personne est sûre : fiez-vous à votre instinct.
check-letters = Il y a des lettres parmi les chiffres : les numéros sont comparés chiffre par chiffre (la lettre O n’est pas un 0). Vérifiez ce que vous avez tapé.
found-need-country = Donnez les deux lettres du pays des numéros du groupe (par exemple TL, PT, BR, GB).
join-title = Rejoindre un groupe
join-hint = Montrez ce code à une personne qui modère, en personne ou par message privé. Elle peut scanner l’image.
join-fingerprint = Lisez ces chiffres à voix haute à la personne qui modère. Elle vérifie qu’elle voit les mêmes.
join-code = Votre code pour rejoindre
join-qr = Votre code pour rejoindre en code QR
join-invite = Une fois approuvée, collez ici l’invitation reçue
join-button = Rejoindre
join-need-invite = Collez l’invitation que vous avez reçue.
wipe-link = Effacement d’urgence…
wipe-title = Tout effacer
wipe-warning = Cela efface votre identité, votre groupe et toutes les alertes de cet appareil, pour toujours. C’est irréversible.
wipe-word = EFFACER
wipe-type = Pour effacer, tapez { $value } ci-dessous
wipe-button = Tout effacer maintenant
wipe-not-confirmed = Rien n’a été effacé. Tapez { $value } exactement.

done-approved = Approuvé.
done-revoked = Retiré. Cette personne ne reçoit plus d’alertes.
done-proposed = Proposé. D’autres personnes modératrices devront peut-être approuver.
corroborations = { $n ->
    [one] 1 membre dit que c’est aussi arrivé
   *[other] { $n } membres disent que c’est aussi arrivé
}
alert-identifiers = Numéros, plaques et noms
alert-actions = Plus
alert-by = Publiée par { $value }
alert-on-behalf = pour quelqu’un d’autre
alert-retracted = Retirée : { $value }
alert-retracted-by = Retirée par { $who }
alert-retracted-by-reason = Retirée par { $who } : { $value }
corroborate-note = Ça m’est arrivé aussi (note, facultatif)
retract-reason = Pourquoi la retirer ?
check-matched = Correspond : { $value }
post-as-typed = Garder le numéro tel que je l’ai tapé
post-expires = La garder pendant
post-on-behalf = Je publie ceci pour quelqu’un d’autre
post-need-category = Choisissez ce qui s’est passé.
post-need-description = Dites ce qui s’est passé.
when-hours-ago = { $n ->
    [one] Il y a 1 heure
   *[other] Il y a { $n } heures
}
when-days-ago = { $n ->
    [one] Il y a 1 jour
   *[other] Il y a { $n } jours
}
expires-default = La durée habituelle
expires-days = { $n ->
    [one] 1 jour
   *[other] { $n } jours
}
status-collective = Groupe
status-you = Vous
status-fingerprint = Empreinte
status-connection = Connexion
status-connected = { $n ->
    [one] Connectée à 1 membre
   *[other] Connectée à { $n } membres
}
status-alone = Connectée à personne pour le moment
status-last-sync = Dernière mise à jour
status-never = Pas encore
status-waiting = Vos publications en attente d’envoi
role-member = membre
role-moderator = modération
role-removed = retirée
role-waiting = pas encore admise
moderate-title = Modérer
approve-title = Approuver quelqu’un
approve-label = Collez son code pour rejoindre
approve-admitted = { $value } est maintenant membre.
approve-recorded = Votre approbation pour { $value } est enregistrée. Il en faut d’autres.
approve-already = { $value } est déjà membre.
approve-confirm-title = Approuver { $value } ?
approve-confirm-hint = Demandez-lui de lire à voix haute l’empreinte que montre son appareil (en personne ou par appel). N’approuvez que si tous les chiffres correspondent : un code transmis par quelqu’un d’autre fait entrer cette personne.
approve-confirm = L’empreinte correspond : approuver
proposal-add = Faire entrer
proposal-remove-moderator = Retirer une modératrice
invite-title = Son invitation
invite-hint = Donnez-lui cette invitation en privé, en personne si possible. Elle peut scanner l’image.
invite-qr = L’invitation en code QR
pending-title = En attente d’approbation
pending-none = Rien n’est en attente.
members-you = vous
name-unreadable = nom illisible ({ $value })
promote = Donner la modération
demote = Retirer la modération
revoke = Retirer…
revoke-title = Retirer { $value } ?
revoke-warning = { $value } ne recevra plus d’alertes et ne pourra plus publier. C’est irréversible.
revoke-reason = Pourquoi (les autres personnes modératrices le voient)
revoke-confirm = Oui, retirer { $value }
revoke-not-confirmed = Personne n’a été retiré : utilisez le bouton de la page de confirmation.
member-unknown = Ce membre n’est pas dans le groupe.
sheet-title = Fiche d’alertes
sheet-hint = Pour imprimer. Elle ne montre aucun nom de membre.
sheet-print = Imprimer
sheet-printed = Imprimée le { $value }
sheet-severity = Danger
sheet-what = Ce qui s’est passé
sheet-who = Qui
sheet-where-when = Où et quand
unlock-run-again = Cette page est verrouillée. Pour la rouvrir, lancez `lookout ui` à nouveau.
unlock-hint = Cette page est verrouillée. Tapez votre phrase de passe Lookout pour la rouvrir (ou lancez `lookout ui` à nouveau).

## Boîtes aux lettres (modératrices)
mailboxes-title = Boîtes aux lettres
mailboxes-hint = Une boîte aux lettres garde les alertes pour les membres hors ligne. Elle ne voit jamais ce qu’elles disent. N’en ajoutez qu’avec un code d’appairage venant d’une personne de confiance.
mailboxes-none = Pas encore de boîte aux lettres.
mailbox-approvals = { $n } approbations sur { $k }
mailbox-addresses = Adresses
mailbox-add-label = Collez le code d’appairage de la boîte (il commence par LKMAILBOX2-)
mailbox-add-button = Ajouter la boîte
mailbox-remove = Retirer…
mailbox-remove-title = Retirer la boîte { $value } ?
mailbox-remove-warning = Les membres cesseront d’utiliser cette boîte, et elle ne pourra jamais être ajoutée à nouveau. C’est irréversible.
mailbox-remove-confirm = Oui, retirer la boîte { $value }
mailbox-not-confirmed = Aucune boîte n’a été retirée : utilisez le bouton de la page de confirmation.
mailbox-unknown = Cette boîte aux lettres n’existe pas.
done-mailbox-added = Boîte ajoutée.
done-mailbox-proposed = Boîte proposée. D’autres modératrices doivent l’approuver.
done-mailbox-removed = Boîte retirée.

## Reach (mailboxes)
status-reach = Joignable
status-reach-direct = Directement
status-reach-relayed = Par une boîte aux lettres
status-reach-unreachable = Pas joignable (vous pouvez quand même recevoir et envoyer)
status-reach-unknown = Pas encore connu
status-mailboxes = { $n ->
    [one] { $n } boîte aux lettres jointe
   *[other] { $n } boîtes aux lettres jointes
}

# Ce que le nœud a refusé, dit à partir de ses données (T12-19 de l’essai 12).
error-name = Le nom est vide ou trop long : au plus { $n } lettres, et une lettre accentuée compte pour deux. Un surnom court est le mieux.
error-too-long = { $field } : texte trop long, { $given } pour au plus { $max } (une lettre accentuée compte pour deux, un emoji pour quatre). Raccourcissez-le ; ce que vous avez écrit est gardé plus bas.
post-description-too-long = La description est trop longue pour le groupe : au plus 2000 lettres, et une lettre accentuée compte pour deux, un emoji pour quatre. Raccourcissez-la.
field-description = La description
field-area = Le lieu
field-physical = La description physique
field-identifier = Un numéro, une plaque, un nom ou un pseudo
field-other = Un texte
error-code-is-join-code = Ceci est un code pour rejoindre (LKJOIN1-…) : il va à une personne qui modère, qui l’approuve. Ici, collez l’invitation (LKINVITE2-…) qu’elle vous donne une fois approuvé.
error-code-is-invite = Ceci est une invitation (LKINVITE2-…) : la nouvelle personne la colle sur son propre appareil. Ici, collez son code pour rejoindre (LKJOIN1-…).
error-code-is-emergency-code = Ceci est un code d’urgence (LKREVOKE1-…) : gardez-le en lieu sûr, loin de cet appareil. Il ne va pas ici.
error-code-not-invite = Ceci n’est pas une invitation : une invitation commence par LKINVITE2-. Copiez-la en entier.
error-code-not-join-code = Ceci n’est pas un code pour rejoindre : il commence par LKJOIN1-. Copiez-le en entier.
error-code-damaged = Ce code est abîmé ou incomplet (un caractère changé ou manquant) : copiez-le à nouveau en entier.
error-old-invite = Cette invitation vient d’une ancienne version de Lookout : demandez-en une nouvelle à la personne qui modère.
error-other-collective = Cet appareil est déjà dans un autre groupe : cette invitation est pour un groupe différent.
proposal-subject-join = empreinte { $fingerprint } : « { $name } » ({ $id })
proposal-subject-former = ancien membre { $value }
proposal-subject-mailbox = boîte { $id } à { $addresses }
