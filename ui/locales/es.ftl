# Español. Needs review by a native speaker.
language-name = Español
language-code = es
language-fallback = en
app-title = Notas
skip-to-content = Ir al contenido
quick-exit = Salir
quick-exit-hint = Salir ya (Esc): muestra una página en blanco y bloquea
nav-label = Principal
nav-alerts = Alertas
nav-check = Comprobar
nav-post = Publicar
nav-status = Estado
nav-moderate = Moderar
nav-sheet = Imprimir
language = Idioma
language-switch = Cambiar
error-title = No funcionó
error-back = Volver
done-posted = Publicado. Va camino de las demás integrantes.
done-retracted = La alerta se retiró para todas.
done-corroborated = Gracias. Se añadió tu relato.
done-revoked = Eliminada. Ya no recibe alertas.
done-proposed = Propuesto. Puede que otras moderadoras deban aprobar.
done-unlocked = Desbloqueado.
feed-title = Alertas
feed-empty = No hay alertas ahora.
feed-new = La lista se actualizó.
alerts-count = { $n ->
    [one] 1 alerta
   *[other] { $n } alertas
}
filter-area = Zona
filter-group = Sobre
filter-all = Todo
filter-time = Publicado
filter-any-time = Siempre
filter-24h = Últimas 24 horas
filter-7d = Últimos 7 días
filter-30d = Últimos 30 días
filter-apply = Mostrar
group-client = Clientes
group-police = Policía
severity-low = Bajo
severity-medium = Medio
severity-high = Alto
severity-critical = Crítico
category-violence = Violencia
category-sexual-assault = Agresión sexual
category-robbery = Robo
category-non-payment = No pagó
category-condom-removal = Se quitó el condón
category-threats = Amenazas
category-drugging = Drogas a escondidas
category-fake-client = Cliente falso
category-time-waster = Hace perder el tiempo
category-police-raid = Redada policial
category-police-harassment = Acoso policial
category-other = Otro
corroborate = A mí también me pasó
retract = Retirar esta alerta
retract-confirm-title = ¿Retirar la alerta que publicó { $value }?
retract-confirm-posted = Publicada por { $who } el { $value }
retract-confirm-warning = Se retira para todas las personas del grupo, y ven que lo hiciste tú. Asegúrate de que es la alerta correcta.
retract-confirm = Sí, retirar esta alerta
retract-unknown = Ninguna alerta activa tiene este id: puede que se haya retirado o caducado.
check-title = Comprobar
check-label = ¿Este número, matrícula o nombre está en una alerta?
check-button = Comprobar
check-none = Nada encontrado para «{ $value }».
check-found = { $n ->
    [one] Cuidado: 1 alerta coincide.
   *[other] Cuidado: { $n } alertas coinciden.
}
post-title = Publicar una alerta
post-category = ¿Qué pasó?
post-choose = Elige…
post-severity = ¿Qué tan peligroso?
post-description = Cuenta lo que pasó
post-phone = Número de teléfono
post-plate = Matrícula
post-name = Nombre o apodo
post-area = Dónde
post-when = Cuándo
post-when-day = O el día en que pasó
post-when-time = Hora de ese día (opcional)
post-when-future = Ese día u hora está en el futuro: indica cuándo pasó.
post-when-too-old = Ese día fue hace más de un año: las alertas son para peligros recientes. Revisa el año.
post-when-unreadable = No se puede leer ese día u hora: elígelo en el calendario.
post-submit = Publicar la alerta
when-now = Ahora mismo
when-yesterday = Ayer
status-title = Estado
status-members = Integrantes
status-alerts = Alertas
members-title = Integrantes
approve-button = Aprobar
cancel = Cancelar
unlock-title = Bloqueado
unlock-passphrase = Frase de contraseña
unlock-button = Desbloquear
unlock-wrong = Frase de contraseña incorrecta. Inténtalo otra vez.
done-founded = Tu grupo está listo. Eres su primera persona moderadora.
done-joined = Invitación guardada. Serás miembro cuando quien modera apruebe tu código para entrar: si todavía no se lo has mostrado, hazlo ahora. Tu dispositivo está trayendo la lista de miembros y las alertas; junto a tu nombre esta página dice “miembro” cuando ya estés dentro.
welcome-title = Bienvenida
welcome-intro = Este dispositivo todavía no tiene identidad. Elige un nombre y una frase de contraseña.
welcome-name = Tu nombre en el grupo
welcome-name-hint = Mejor un apodo. Los demás miembros lo ven.
welcome-passphrase = Elige una frase de contraseña
welcome-passphrase-hint = La necesitas cada vez. Nadie puede recuperarla. Lo mejor son cuatro o cinco palabras sin relación.
welcome-again = Escribe la frase de contraseña otra vez
welcome-button = Crear mi identidad
welcome-need-name = Elige un nombre.
welcome-passphrases-differ = Las dos frases de contraseña no son iguales. No se creó nada.
welcome-too-weak = Esta frase de contraseña es fácil de adivinar. Quien se lleve este dispositivo podría encontrarla. Elige cuatro o cinco palabras sin relación. No se creó nada.
strength-0 = Muy fácil de adivinar
strength-1 = Fácil de adivinar
strength-2 = Todavía demasiado fácil de adivinar
strength-3 = Difícil de adivinar
strength-4 = Muy difícil de adivinar
enrol-title = Hola, { $value }
certificate-title = Tu código de emergencia
certificate-hint = Si pierdes este dispositivo o te lo quitan, cualquier miembro puede usar este código para bloquear tu identidad. Apúntalo o guárdalo lejos de este dispositivo. Solo se muestra ahora.
found-title = Empezar un grupo nuevo
found-hint = Pasas a moderar el grupo. Después apruebas a las personas que piden entrar.
found-name = Nombre del grupo
found-country = País de los números de teléfono del grupo, dos letras (TL Timor Oriental, PT Portugal, BR Brasil, ES España…): los números escritos sin + se leen para este país
found-button = Empezar el grupo
found-need-name = Ponle un nombre al grupo.
alert-phone-unverified = { $value } (tal como se escribió, sin verificar)
post-phone-letters = El número de teléfono «{ $value }» tiene letras: escribe solo cifras (la letra O no es un 0). Para guardarlo tal como está, marcado sin verificar, marca «Guardar el número tal como lo escribí».
post-phone-invalid = «{ $value }» no es un número de teléfono válido para el país del grupo: revisa las cifras o escríbelo con + y el prefijo del país. Para guardarlo tal como está, marcado sin verificar, marca «Guardar el número tal como lo escribí».
check-not-proof = Eso no prueba que sea seguro: confía en tu instinto.
check-letters = Tiene letras entre las cifras: los números se comparan cifra por cifra (la letra O no es un 0). Revisa lo que escribiste.
found-need-country = Indica las dos letras del país de los números de teléfono del grupo (por ejemplo TL, PT, BR, GB).
join-title = Entrar en un grupo
join-hint = Muestra este código a quien modera, en persona o por un mensaje privado. Puede escanear la imagen.
join-fingerprint = Lee estos números en voz alta a quien modera. Comprueba que ve los mismos.
join-code = Tu código para entrar
join-qr = Tu código para entrar como código QR
join-invite = Cuando te aprueben, pega aquí la invitación que te dieron
join-button = Entrar
join-need-invite = Pega la invitación que te dieron.
wipe-link = Borrado de emergencia…
wipe-title = Borrar todo
wipe-warning = Esto borra tu identidad, tu grupo y todas las alertas de este dispositivo, para siempre. No se puede deshacer.
wipe-word = BORRAR
wipe-type = Para borrar, escribe { $value } abajo
wipe-button = Borrar todo ahora
wipe-not-confirmed = No se borró nada. Escribe { $value } exactamente.

done-approved = Aprobado.
corroborations = { $n ->
    [one] 1 miembro dice que le pasó también
   *[other] { $n } miembros dicen que les pasó también
}
alert-identifiers = Números, matrículas y nombres
alert-actions = Más
alert-by = Publicado por { $value }
alert-on-behalf = por otra persona
alert-retracted = Retirada: { $value }
alert-retracted-by = Retirada por { $who }
alert-retracted-by-reason = Retirada por { $who }: { $value }
corroborate-note = Me pasó también (nota, opcional)
retract-reason = ¿Por qué la retiras?
check-matched = Coincide: { $value }
post-as-typed = Guardar el número tal como lo escribí
post-expires = Guardarla durante
post-on-behalf = Publico esto por otra persona
post-need-category = Elige qué pasó.
post-need-description = Cuenta qué pasó.
when-hours-ago = { $n ->
    [one] Hace 1 hora
   *[other] Hace { $n } horas
}
when-days-ago = { $n ->
    [one] Hace 1 día
   *[other] Hace { $n } días
}
expires-default = El tiempo habitual
expires-days = { $n ->
    [one] 1 día
   *[other] { $n } días
}
status-collective = Grupo
status-you = Tú
status-fingerprint = Huella
status-connection = Conexión
status-connected = { $n ->
    [one] Conectada a 1 miembro
   *[other] Conectada a { $n } miembros
}
status-alone = Ahora no hay conexión con nadie
status-last-sync = Última actualización
status-never = Todavía no
status-waiting = Tus publicaciones que esperan para salir
role-member = miembro
role-moderator = moderación
role-removed = expulsada
role-waiting = todavía sin admitir
moderate-title = Moderar
approve-title = Aprobar a alguien
approve-label = Pega su código para entrar
approve-admitted = { $value } ya es miembro.
approve-recorded = Tu aprobación para { $value } quedó registrada. Hacen falta más aprobaciones.
approve-already = { $value } ya es miembro.
approve-confirm-title = ¿Aprobar a { $value }?
approve-confirm-hint = Pídele que lea en voz alta la huella que muestra su dispositivo (en persona o por llamada). Aprueba solo si coinciden todas las cifras: un código que te pasa otra persona deja entrar a esa persona.
approve-confirm = La huella coincide: aprobar
proposal-add = Dejar entrar
proposal-remove-moderator = Quitar a una moderadora
invite-title = Su invitación
invite-hint = Dale esta invitación en privado, en persona si puedes. Puede escanear la imagen.
invite-qr = Invitación como código QR
pending-title = Esperando aprobación
pending-none = No hay nada esperando.
members-you = tú
name-unreadable = nombre ilegible ({ $value })
promote = Dar moderación
demote = Quitar la moderación
revoke = Expulsar…
revoke-title = ¿Expulsar a { $value }?
revoke-warning = { $value } dejará de recibir alertas y no podrá publicar. No se puede deshacer.
revoke-reason = Por qué (lo ven las demás personas moderadoras)
revoke-confirm = Sí, expulsar a { $value }
revoke-not-confirmed = No se expulsó a nadie: usa el botón de la página de confirmación.
member-unknown = Ese miembro no está en el grupo.
sheet-title = Hoja de alertas
sheet-hint = Para imprimir. No muestra nombres de miembros.
sheet-print = Imprimir
sheet-printed = Impresa el { $value }
sheet-severity = Peligro
sheet-what = Qué pasó
sheet-who = Quién
sheet-where-when = Dónde y cuándo
unlock-run-again = Esta página está bloqueada. Para abrirla otra vez, ejecuta `lookout ui` de nuevo.
unlock-hint = Esta página está bloqueada. Escribe tu frase de contraseña de Lookout para abrirla otra vez (o ejecuta `lookout ui` de nuevo).

## Buzones (moderadoras)
mailboxes-title = Buzones
mailboxes-hint = Un buzón guarda las alertas para quien está sin conexión. Nunca ve lo que dicen. Añade uno solo con un código de emparejamiento de alguien de confianza.
mailboxes-none = Todavía no hay buzones.
mailbox-approvals = { $n } de { $k } aprobaciones
mailbox-addresses = Direcciones
mailbox-add-label = Pega el código de emparejamiento del buzón (empieza por LKMAILBOX2-)
mailbox-add-button = Añadir buzón
mailbox-remove = Quitar…
mailbox-remove-title = ¿Quitar el buzón { $value }?
mailbox-remove-warning = Las integrantes dejarán de usar este buzón y no se podrá volver a añadir. No se puede deshacer.
mailbox-remove-confirm = Sí, quitar el buzón { $value }
mailbox-not-confirmed = No se quitó ningún buzón: usa el botón de la página de confirmación.
mailbox-unknown = Ese buzón no existe.
done-mailbox-added = Buzón añadido.
done-mailbox-proposed = Buzón propuesto. Otras moderadoras tienen que aprobarlo.
done-mailbox-removed = Buzón quitado.

## Reach (mailboxes)
status-reach = Alcanzable
status-reach-direct = Directamente
status-reach-relayed = A través de un buzón
status-reach-unreachable = No alcanzable (aún puedes recibir y enviar)
status-reach-unknown = Todavía no se sabe
status-mailboxes = { $n ->
    [one] { $n } buzón alcanzado
   *[other] { $n } buzones alcanzados
}

# Lo que el nodo rechazó, dicho a partir de sus datos (T12-19 de la Prueba 12).
error-name = El nombre está vacío o es demasiado largo: como mucho { $n } letras, y una letra con tilde cuenta como dos. Lo mejor es un apodo corto.
error-too-long = { $field }: texto demasiado largo, { $given } de como mucho { $max } (una letra con tilde cuenta como dos, un emoji como cuatro). Acórtalo; lo que escribiste se guarda abajo.
post-description-too-long = La descripción es demasiado larga para el grupo: como mucho 2000 letras, y una letra con tilde cuenta como dos, un emoji como cuatro. Acórtala.
field-description = La descripción
field-area = El lugar
field-physical = La descripción física
field-identifier = Un número, matrícula, nombre o perfil
field-other = Un texto
error-code-is-join-code = Esto es un código para entrar (LKJOIN1-…): va a quien modera, que lo aprueba. Aquí pega la invitación (LKINVITE2-…) que te dé después de aprobarlo.
error-code-is-invite = Esto es una invitación (LKINVITE2-…): la persona nueva la pega en su propio dispositivo. Aquí pega su código para entrar (LKJOIN1-…).
error-code-is-emergency-code = Esto es un código de emergencia (LKREVOKE1-…): guárdalo en un lugar seguro, lejos de este dispositivo. No va aquí.
error-code-not-invite = Esto no es una invitación: una invitación empieza por LKINVITE2-. Cópiala entera.
error-code-not-join-code = Esto no es un código para entrar: empieza por LKJOIN1-. Cópialo entero.
error-code-damaged = Este código está dañado o incompleto (un carácter cambió o falta): cópialo entero otra vez.
error-old-invite = Esta invitación la hizo una versión antigua de Lookout: pide una nueva a quien modera.
error-other-collective = Este dispositivo ya está en otro grupo: esta invitación es para uno distinto.
proposal-subject-join = huella { $fingerprint }: «{ $name }» ({ $id })
proposal-subject-former = antiguo miembro { $value }
proposal-subject-mailbox = buzón { $id } en { $addresses }
