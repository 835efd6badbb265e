# English: the complete set every other language falls back to.
language-name = English
language-code = en
language-fallback = en
# Neutral on purpose: the tab title never says what this is.
app-title = Notes
skip-to-content = Skip to content
quick-exit = Exit
quick-exit-hint = Leave now (Esc): shows a blank page and locks
nav-label = Main
nav-alerts = Alerts
nav-check = Check
nav-post = Post
nav-status = Status
nav-moderate = Moderate
nav-sheet = Print
language = Language
language-switch = Change
error-title = That did not work
error-back = Go back
done-posted = Posted. It is on its way to the other members.
done-retracted = The alert is retracted for everyone.
done-corroborated = Thank you. Your report was added.
done-approved = Approved.
done-revoked = Removed. They no longer get alerts.
done-proposed = Proposed. Other moderators may need to approve.
done-unlocked = Unlocked.
feed-title = Alerts
feed-empty = No alerts right now.
feed-new = The list was updated.
alerts-count = { $n ->
    [one] 1 alert
   *[other] { $n } alerts
}
filter-area = Area
filter-group = About
filter-all = Everything
filter-time = Posted
filter-any-time = Any time
filter-24h = Last 24 hours
filter-7d = Last 7 days
filter-30d = Last 30 days
filter-apply = Show
group-client = Clients
group-police = Police
severity-low = Low
severity-medium = Medium
severity-high = High
severity-critical = Critical
category-violence = Violence
category-sexual-assault = Sexual assault
category-robbery = Robbery
category-non-payment = Did not pay
category-condom-removal = Removed condom
category-threats = Threats
category-drugging = Drugging
category-fake-client = Fake client
category-time-waster = Time waster
category-police-raid = Police raid
category-police-harassment = Police harassment
category-other = Other
corroborations = { $n ->
    [one] 1 member says it happened to them too
   *[other] { $n } members say it happened to them too
}
alert-identifiers = Numbers, plates and names
alert-actions = More
alert-by = Posted by { $value }
alert-on-behalf = for someone else
alert-retracted = Retracted: { $value }
corroborate-note = It happened to me too (note, optional)
corroborate = It happened to me too
retract-reason = Why take it back?
retract = Take back this alert
check-title = Check
check-label = Is this number, plate or name in an alert?
check-button = Check
check-none = Nothing found for “{ $value }”.
check-found = { $n ->
    [one] Careful: 1 alert matches.
   *[other] Careful: { $n } alerts match.
}
check-matched = Matched: { $value }
post-title = Post an alert
post-category = What happened?
post-choose = Choose…
post-severity = How dangerous?
post-description = Tell what happened
post-phone = Phone number
post-as-typed = Keep the number as I typed it
post-plate = Car plate
post-name = Name or nickname
post-area = Where
post-when = When
post-expires = Keep it for
post-on-behalf = I post this for someone else
post-submit = Post the alert
post-need-category = Choose what happened.
post-need-description = Say what happened.
when-now = Just now
when-hours-ago = { $n ->
    [one] 1 hour ago
   *[other] { $n } hours ago
}
when-yesterday = Yesterday
when-days-ago = { $n ->
    [one] 1 day ago
   *[other] { $n } days ago
}
expires-default = The usual time
expires-days = { $n ->
    [one] 1 day
   *[other] { $n } days
}
status-title = Status
status-collective = Group
status-you = You
status-fingerprint = Fingerprint
status-connection = Connection
status-connected = { $n ->
    [one] Connected to 1 member
   *[other] Connected to { $n } members
}
status-alone = Not connected to anyone right now
status-members = Members
status-alerts = Alerts
status-last-sync = Last update
status-never = Not yet
status-waiting = Your posts still waiting to go out
status-reach = Reachable
status-reach-direct = Directly
status-reach-relayed = Through a mailbox
status-reach-unreachable = Not reachable (you can still fetch and send)
status-reach-unknown = Not known yet
status-mailboxes = { $n ->
    [one] { $n } mailbox reached
   *[other] { $n } mailboxes reached
}
role-member = member
role-moderator = moderator
role-removed = removed
role-waiting = not yet admitted
moderate-title = Moderate
approve-title = Approve someone
approve-label = Paste their join code
approve-button = Approve
approve-admitted = { $value } is now a member.
approve-recorded = Your approval for { $value } is recorded. More approvals are needed.
approve-already = { $value } is already a member.
invite-title = Their invite
invite-hint = Give them this invite privately, in person if you can. They can scan the picture.
invite-qr = Invite as a QR code
pending-title = Waiting for approval
pending-none = Nothing is waiting.
members-title = Members
members-you = you
promote = Make moderator
demote = Remove moderator rights
revoke = Remove…
revoke-title = Remove { $value }?
revoke-warning = { $value } will stop getting alerts and cannot post. This cannot be undone.
revoke-reason = Why (other moderators see this)
revoke-confirm = Yes, remove { $value }
revoke-not-confirmed = Nobody was removed: use the button on the confirmation page.
member-unknown = That member is not in the group.
cancel = Cancel
sheet-title = Alert sheet
sheet-hint = For printing. It shows no member names.
sheet-print = Print
sheet-printed = Printed { $value }
sheet-severity = Danger
sheet-what = What happened
sheet-who = Who
sheet-where-when = Where and when
unlock-title = Locked
unlock-passphrase = Passphrase
unlock-button = Unlock
unlock-wrong = Wrong passphrase. Try again.
unlock-run-again = This page is locked. To open it again, run `lookout ui` again.
