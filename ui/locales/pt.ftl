# Português. Needs review by a native speaker.
language-name = Português
language-code = pt
language-fallback = en
app-title = Notas
skip-to-content = Ir para o conteúdo
quick-exit = Sair
quick-exit-hint = Sair já (Esc): mostra uma página em branco e bloqueia
nav-label = Principal
nav-alerts = Alertas
nav-check = Verificar
nav-post = Publicar
nav-status = Estado
nav-moderate = Moderar
nav-sheet = Imprimir
language = Língua
language-switch = Mudar
error-title = Não funcionou
error-back = Voltar
done-posted = Publicado. Está a caminho dos outros membros.
done-retracted = O alerta foi retirado para todos.
done-corroborated = Obrigada. O seu relato foi acrescentado.
done-approved = Aprovado.
done-revoked = Removido. Deixa de receber alertas.
done-proposed = Proposto. Outros moderadores podem ter de aprovar.
done-unlocked = Desbloqueado.
feed-title = Alertas
feed-empty = Não há alertas agora.
feed-new = A lista foi atualizada.
alerts-count = { $n ->
    [one] 1 alerta
   *[other] { $n } alertas
}
filter-area = Zona
filter-group = Sobre
filter-all = Tudo
filter-time = Publicado
filter-any-time = Sempre
filter-24h = Últimas 24 horas
filter-7d = Últimos 7 dias
filter-30d = Últimos 30 dias
filter-apply = Mostrar
group-client = Clientes
group-police = Polícia
severity-low = Baixo
severity-medium = Médio
severity-high = Alto
severity-critical = Crítico
category-violence = Violência
category-sexual-assault = Agressão sexual
category-robbery = Roubo
category-non-payment = Não pagou
category-condom-removal = Tirou o preservativo
category-threats = Ameaças
category-drugging = Drogas às escondidas
category-fake-client = Cliente falso
category-time-waster = Faz perder tempo
category-police-raid = Rusga policial
category-police-harassment = Assédio policial
category-other = Outro
corroborations = { $n ->
    [one] 1 membro diz que também lhe aconteceu
   *[other] { $n } membros dizem que também lhes aconteceu
}
alert-identifiers = Números, matrículas e nomes
alert-actions = Mais
alert-by = Publicado por { $value }
alert-on-behalf = por outra pessoa
alert-retracted = Retirado: { $value }
alert-retracted-by = Retirado por { $who }
alert-retracted-by-reason = Retirado por { $who }: { $value }
corroborate-note = Também me aconteceu (nota, opcional)
corroborate = Também me aconteceu
retract-reason = Porque retirar?
retract = Retirar este alerta
retract-confirm-title = Retirar o alerta que { $value } publicou?
retract-confirm-posted = Publicado por { $who } em { $value }
retract-confirm-warning = É retirado para todos os membros, e eles veem que foi você. Confirme que é o alerta certo.
retract-confirm = Sim, retirar este alerta
retract-unknown = Nenhum alerta ativo tem este id: pode ter sido retirado ou ter expirado.
check-title = Verificar
check-label = Este número, matrícula ou nome está num alerta?
check-button = Verificar
check-none = Nada encontrado para “{ $value }”.
check-found = { $n ->
    [one] Cuidado: 1 alerta corresponde.
   *[other] Cuidado: { $n } alertas correspondem.
}
check-matched = Corresponde: { $value }
post-title = Publicar um alerta
post-category = O que aconteceu?
post-choose = Escolha…
post-severity = Qual o perigo?
post-description = Conte o que aconteceu
post-phone = Número de telefone
post-as-typed = Guardar o número como o escrevi
post-plate = Matrícula
post-name = Nome ou alcunha
post-area = Onde
post-when = Quando
post-when-day = Ou o dia em que aconteceu
post-when-time = Hora nesse dia (opcional)
post-when-future = Esse dia ou hora está no futuro: indique quando aconteceu.
post-when-too-old = Esse dia foi há mais de um ano: os alertas são para perigo recente. Verifique o ano.
post-when-unreadable = Não é possível ler esse dia ou hora: escolha-o no calendário.
post-expires = Manter durante
post-on-behalf = Publico por outra pessoa
post-submit = Publicar o alerta
post-need-category = Escolha o que aconteceu.
post-need-description = Diga o que aconteceu.
when-now = Agora mesmo
when-hours-ago = { $n ->
    [one] Há 1 hora
   *[other] Há { $n } horas
}
when-yesterday = Ontem
when-days-ago = { $n ->
    [one] Há 1 dia
   *[other] Há { $n } dias
}
expires-default = O tempo habitual
expires-days = { $n ->
    [one] 1 dia
   *[other] { $n } dias
}
status-title = Estado
status-collective = Grupo
status-you = Você
status-fingerprint = Impressão digital
status-connection = Ligação
status-connected = { $n ->
    [one] Ligada a 1 membro
   *[other] Ligada a { $n } membros
}
status-alone = Sem ligação a ninguém agora
status-members = Membros
status-alerts = Alertas
status-last-sync = Última atualização
status-never = Ainda não
status-waiting = Publicações à espera de sair
status-reach = Alcançável
status-reach-direct = Diretamente
status-reach-relayed = Através de uma caixa postal
status-reach-unreachable = Não alcançável (ainda pode receber e enviar)
status-reach-unknown = Ainda não se sabe
status-mailboxes = { $n ->
    [one] { $n } caixa postal alcançada
   *[other] { $n } caixas postais alcançadas
}
role-member = membro
role-moderator = moderadora
role-removed = removida
role-waiting = ainda não admitida
moderate-title = Moderar
approve-title = Aprovar alguém
approve-label = Cole o código de adesão
approve-button = Aprovar
approve-admitted = { $value } é agora membro.
approve-recorded = A sua aprovação de { $value } ficou registada. Faltam outras aprovações.
approve-already = { $value } já é membro.
approve-confirm-title = Aprovar { $value }?
approve-confirm-hint = Peça-lhe que leia em voz alta a impressão digital que o aparelho mostra (pessoalmente ou numa chamada). Aprove só se todos os algarismos coincidirem: um código passado por outra pessoa deixa entrar essa pessoa.
approve-confirm = A impressão digital coincide: aprovar
proposal-add = Deixar entrar
proposal-remove-moderator = Remover uma moderadora
invite-title = O convite
invite-hint = Entregue este convite em privado, em pessoa se puder. Pode ler a imagem.
invite-qr = Convite em código QR
pending-title = À espera de aprovação
pending-none = Nada à espera.
members-title = Membros
members-you = você
name-unreadable = nome ilegível ({ $value })
promote = Tornar moderadora
demote = Tirar direitos de moderação
revoke = Remover…
revoke-title = Remover { $value }?
revoke-warning = { $value } deixa de receber alertas e não pode publicar. Não se pode desfazer.
revoke-reason = Porquê (os outros moderadores veem isto)
revoke-confirm = Sim, remover { $value }
revoke-not-confirmed = Ninguém foi removido: use o botão da página de confirmação.
member-unknown = Esse membro não está no grupo.
cancel = Cancelar
sheet-title = Folha de alertas
sheet-hint = Para imprimir. Não mostra nomes de membros.
sheet-print = Imprimir
sheet-printed = Impresso em { $value }
sheet-severity = Perigo
sheet-what = O que aconteceu
sheet-who = Quem
sheet-where-when = Onde e quando
unlock-title = Bloqueado
unlock-passphrase = Frase-passe
unlock-button = Desbloquear
unlock-wrong = Frase-passe errada. Tente outra vez.
unlock-run-again = Esta página está bloqueada. Para a abrir, corra `lookout ui` outra vez.
unlock-hint = Esta página está bloqueada. Escreva a sua frase-passe do Lookout para a abrir outra vez (ou corra `lookout ui` outra vez).
done-founded = O seu grupo está pronto. Você é quem o modera primeiro.
done-joined = Convite guardado. Passa a ser membro quando quem modera aprovar o seu código de entrada: se ainda não o mostrou a essa pessoa, faça-o agora. O seu aparelho está a buscar a lista de membros e os alertas; ao lado do seu nome esta página diz “membro” quando já estiver dentro.
welcome-title = Bem-vinda
welcome-intro = Este aparelho ainda não tem identidade. Escolha um nome e uma frase-passe.
welcome-name = O seu nome no grupo
welcome-name-hint = Um apelido é o melhor. Os outros membros veem-no.
welcome-passphrase = Escolha uma frase-passe
welcome-passphrase-hint = Precisa dela sempre. Ninguém a pode recuperar. Quatro ou cinco palavras sem relação entre si são o melhor.
welcome-again = Escreva a frase-passe outra vez
welcome-button = Criar a minha identidade
welcome-need-name = Escolha um nome.
welcome-passphrases-differ = As duas frases-passe não são iguais. Nada foi criado.
welcome-too-weak = Esta frase-passe é fácil de adivinhar. Quem ficar com este aparelho pode descobri-la. Escolha quatro ou cinco palavras sem relação. Nada foi criado.
strength-0 = Muito fácil de adivinhar
strength-1 = Fácil de adivinhar
strength-2 = Ainda fácil demais de adivinhar
strength-3 = Difícil de adivinhar
strength-4 = Muito difícil de adivinhar
enrol-title = Olá, { $value }
certificate-title = O seu código de emergência
certificate-hint = Se este aparelho se perder ou for levado, qualquer membro pode usar este código para bloquear a sua identidade. Escreva-o ou guarde-o longe deste aparelho. Só é mostrado agora.
found-title = Começar um grupo novo
found-hint = Passa a moderar o grupo. Depois aprova as pessoas que pedem para entrar.
found-name = Nome do grupo
found-country = País dos números de telefone do grupo, duas letras (TL Timor-Leste, PT Portugal, BR Brasil, GB Reino Unido…): os números escritos sem + são lidos para este país
found-button = Começar o grupo
found-need-name = Dê um nome ao grupo.
alert-phone-unverified = { $value } (como foi escrito, não verificado)
post-phone-letters = O número de telefone “{ $value }” tem letras: escreva só algarismos (a letra O não é um 0). Para o guardar tal como está, marcado como não verificado, marque “Guardar o número como o escrevi”.
post-phone-invalid = “{ $value }” não é um número de telefone válido para o país do grupo: confira os algarismos, ou escreva-o com + e o indicativo do país. Para o guardar tal como está, marcado como não verificado, marque “Guardar o número como o escrevi”.
check-not-proof = Isso não prova que a pessoa é segura: confie no seu instinto.
check-letters = Tem letras no meio dos algarismos: os números são comparados algarismo a algarismo (a letra O não é um 0). Confira o que escreveu.
found-need-country = Indique as duas letras do país dos números de telefone do grupo (por exemplo TL, PT, BR, GB).
join-title = Entrar num grupo
join-hint = Mostre este código a quem modera o grupo, pessoalmente ou por mensagem privada. Pode ler a imagem.
join-fingerprint = Leia estes números em voz alta a quem modera. Essa pessoa confirma que vê os mesmos.
join-code = O seu código de entrada
join-qr = O seu código de entrada como código QR
join-invite = Quando for aprovada, cole aqui o convite que recebeu
join-button = Entrar
join-need-invite = Cole o convite que recebeu de quem modera.
wipe-link = Apagar tudo em emergência…
wipe-title = Apagar tudo
wipe-warning = Isto apaga a sua identidade, o seu grupo e todos os alertas deste aparelho, para sempre. Não se pode desfazer.
wipe-word = APAGAR
wipe-type = Para apagar, escreva { $value } abaixo
wipe-button = Apagar tudo agora
wipe-not-confirmed = Nada foi apagado. Escreva { $value } exatamente.

## Caixas de correio (moderadoras)
mailboxes-title = Caixas de correio
mailboxes-hint = Uma caixa de correio guarda os alertas para quem está sem ligação. Nunca vê o que dizem. Adicione só com um código de emparelhamento de alguém em quem confia.
mailboxes-none = Ainda não há caixas de correio.
mailbox-approvals = { $n } de { $k } aprovações
mailbox-addresses = Endereços
mailbox-add-label = Cole o código de emparelhamento da caixa (começa por LKMAILBOX2-)
mailbox-add-button = Adicionar caixa
mailbox-remove = Remover…
mailbox-remove-title = Remover a caixa { $value }?
mailbox-remove-warning = Os membros deixam de usar esta caixa, e nunca mais pode ser adicionada. Não se pode desfazer.
mailbox-remove-confirm = Sim, remover a caixa { $value }
mailbox-not-confirmed = Nenhuma caixa foi removida: use o botão da página de confirmação.
mailbox-unknown = Essa caixa de correio não existe.
done-mailbox-added = Caixa adicionada.
done-mailbox-proposed = Caixa proposta. Outras moderadoras têm de aprovar.
done-mailbox-removed = Caixa removida.

# O que o nó recusou, dito a partir dos seus dados (T12-19 do Ensaio 12).
error-name = O nome está vazio ou é longo demais: no máximo { $n } letras, e uma letra com acento conta como duas. Um nome curto ou alcunha é o melhor.
error-too-long = { $field }: texto longo demais, { $given } de no máximo { $max } (uma letra com acento conta como duas, um emoji como quatro). Encurte-o; o que escreveu está guardado abaixo.
post-description-too-long = A descrição é longa demais para o grupo: no máximo 2000 letras, e uma letra com acento conta como duas, um emoji como quatro. Encurte-a.
field-description = A descrição
field-area = O local
field-physical = A descrição física
field-identifier = Um número, matrícula, nome ou perfil
field-other = Um texto
error-code-is-join-code = Este é um código de entrada (LKJOIN1-…): vai para quem modera, que o aprova. Aqui cole o convite (LKINVITE2-…) que essa pessoa lhe der depois de aprovar.
error-code-is-invite = Este é um convite (LKINVITE2-…): a pessoa nova cola-o no seu próprio aparelho. Aqui cole o código de entrada dela (LKJOIN1-…).
error-code-is-emergency-code = Este é um código de emergência (LKREVOKE1-…): guarde-o em segurança, longe deste aparelho. Não é aqui que se cola.
error-code-not-invite = Isto não é um convite: um convite começa por LKINVITE2-. Copie-o todo.
error-code-not-join-code = Isto não é um código de entrada: começa por LKJOIN1-. Copie-o todo.
error-code-damaged = Este código está danificado ou incompleto (um carácter mudou ou falta): copie-o todo outra vez.
error-old-invite = Este convite foi feito por uma versão antiga do Lookout: peça um novo a quem modera.
error-other-collective = Este aparelho já está noutro grupo: este convite é para um grupo diferente.
proposal-subject-join = impressão digital { $fingerprint }: “{ $name }” ({ $id })
proposal-subject-former = antigo membro { $value }
proposal-subject-mailbox = caixa { $id } em { $addresses }
