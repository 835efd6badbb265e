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
alert-retracted-by = Retracted by { $who }
alert-retracted-by-reason = Retracted by { $who }: { $value }
corroborate-note = It happened to me too (note, optional)
corroborate = It happened to me too
retract-reason = Why take it back?
retract = Take back this alert
retract-confirm-title = Take back the alert { $value } posted?
retract-confirm-posted = Posted by { $who } on { $value }
retract-confirm-warning = It is withdrawn for every member, and they see that you did it. Make sure it is the alert you mean.
retract-confirm = Yes, take back this alert
retract-unknown = No live alert has this id: it may have been taken back or expired.
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
post-when-day = Or the day it happened
post-when-time = Time of day on that day (optional)
post-when-future = That day or time is in the future: give when it happened.
post-when-too-old = That day is more than a year ago: alerts are for recent danger. Check the year.
post-when-unreadable = That day or time cannot be read: pick it in the calendar.
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
approve-confirm-title = Approve { $value }?
approve-confirm-hint = Ask them to read aloud the fingerprint their device shows (face to face or on a call). Approve only if every digit matches: a code passed on by someone else lets that person in.
approve-confirm = The fingerprint matches: approve
proposal-add = Let in
proposal-remove-moderator = Remove a moderator
invite-title = Their invite
invite-hint = Give them this invite privately, in person if you can. They can scan the picture.
invite-qr = Invite as a QR code
pending-title = Waiting for approval
pending-none = Nothing is waiting.
members-title = Members
members-you = you
name-unreadable = unreadable name ({ $value })
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
unlock-hint = This page is locked. Type your Lookout passphrase to open it again (or run `lookout ui` again).
done-founded = Your group is ready. You are its first moderator.
done-joined = Invite saved. You are a member once a moderator approves your join code: if you have not shown it to one yet, do it now. Your device is fetching the member list and the alerts; beside your name this page says “member” once you are in.
welcome-title = Welcome
welcome-intro = This device has no identity yet. Choose a name and a passphrase.
welcome-name = Your name in the group
welcome-name-hint = A nickname is best. Other members see it.
welcome-passphrase = Choose a passphrase
welcome-passphrase-hint = You need it every time. Nobody can recover it. Four or five unrelated words are best.
welcome-again = Type the passphrase again
welcome-button = Create my identity
welcome-need-name = Choose a name.
welcome-passphrases-differ = The two passphrases are not the same. Nothing was created.
welcome-too-weak = This passphrase is too easy to guess. Someone who takes this device could find it. Choose four or five unrelated words. Nothing was created.
strength-0 = Very easy to guess
strength-1 = Easy to guess
strength-2 = Still too easy to guess
strength-3 = Hard to guess
strength-4 = Very hard to guess
enrol-title = Hello, { $value }
certificate-title = Your emergency code
certificate-hint = If this device is lost or taken, any member can use this code to lock your identity. Write it down or save it away from this device. It is shown only now.
found-title = Start a new group
found-hint = You become its first moderator. You then approve the people who ask to join.
found-name = Name of the group
found-country = Country of the group's phone numbers, two letters (TL Timor-Leste, PT Portugal, BR Brazil, GB United Kingdom…): numbers written without + are read for it
found-button = Start the group
found-need-name = Give the group a name.
alert-phone-unverified = { $value } (as typed, unverified)
post-phone-letters = The phone number “{ $value }” has letters in it: type it in digits only (a letter O is not a 0). To keep it exactly as typed, marked unverified, tick “Keep the number as I typed it”.
post-phone-invalid = “{ $value }” is not a valid phone number for the group's country: check the digits, or write it with + and the country code. To keep it exactly as typed, marked unverified, tick “Keep the number as I typed it”.
check-not-proof = That does not prove they are safe: trust your instincts.
check-letters = It has letters among the digits: numbers are matched digit for digit (a letter O is not a 0). Check what you typed.
found-need-country = Give the two letters of the country of the group's phone numbers (for example TL, PT, BR, GB).
join-title = Join a group
join-hint = Show this code to a moderator, in person or by a private message. They can scan the picture.
join-fingerprint = Read these numbers aloud to the moderator. They check that they see the same.
join-code = Your join code
join-qr = Your join code as a QR code
join-invite = When the moderator has approved you, paste their invite here
join-button = Join
join-need-invite = Paste the invite the moderator gave you.
wipe-link = Emergency wipe…
wipe-title = Erase everything
wipe-warning = This erases your identity, your group and every alert on this device, for good. It cannot be undone.
wipe-word = ERASE
wipe-type = To erase, type { $value } below
wipe-button = Erase everything now
wipe-not-confirmed = Nothing was erased. Type { $value } exactly.

## Mailboxes (moderators)
mailboxes-title = Mailboxes
mailboxes-hint = A mailbox keeps alerts for members who are offline. It never sees what they say. Add one only with a pairing code from someone you trust.
mailboxes-none = No mailboxes yet.
mailbox-approvals = { $n } of { $k } approvals
mailbox-addresses = Addresses
mailbox-add-label = Paste the mailbox's pairing code (it starts with LKMAILBOX2-)
mailbox-add-button = Add mailbox
mailbox-remove = Remove…
mailbox-remove-title = Remove mailbox { $value }?
mailbox-remove-warning = Members will stop using this mailbox, and it can never be added again. This cannot be undone.
mailbox-remove-confirm = Yes, remove mailbox { $value }
mailbox-not-confirmed = No mailbox was removed: use the button on the confirmation page.
mailbox-unknown = There is no such mailbox.
done-mailbox-added = Mailbox added.
done-mailbox-proposed = Mailbox proposed. Other moderators need to approve it.
done-mailbox-removed = Mailbox removed.

# What the node refused, said from its data (Trial 12's T12-19).
error-name = The name is empty or too long: at most { $n } letters, and a letter with an accent counts as two. A short nickname is best.
error-too-long = { $field } is too long: { $given } of at most { $max } (a letter with an accent counts as two, an emoji as four). Shorten it; what you typed is kept below.
post-description-too-long = The description is too long for the group: at most 2000 letters, and a letter with an accent counts as two, an emoji as four. Shorten it.
field-description = The description
field-area = The place
field-physical = The physical description
field-identifier = A number, plate, name or handle
field-other = A text
error-code-is-join-code = This is a join code (LKJOIN1-…): it goes to a moderator, who approves it. Here paste the invite (LKINVITE2-…) the moderator gives you once approved.
error-code-is-invite = This is an invite (LKINVITE2-…): the new member pastes it on their own device. Here paste their join code (LKJOIN1-…).
error-code-is-emergency-code = This is an emergency code (LKREVOKE1-…): keep it safe, away from this device. It does not go here.
error-code-not-invite = This is not an invite: an invite starts with LKINVITE2-. Copy all of it.
error-code-not-join-code = This is not a join code: a join code starts with LKJOIN1-. Copy all of it.
error-code-damaged = This code is damaged or incomplete (a character changed or missing): copy all of it again.
error-old-invite = This invite was made by an older version of Lookout: ask the moderator for a new one.
error-other-collective = This device is already in another group: this invite is for a different one.
proposal-subject-join = fingerprint { $fingerprint }: “{ $name }” ({ $id })
proposal-subject-former = former member { $value }
proposal-subject-mailbox = mailbox { $id } at { $addresses }
