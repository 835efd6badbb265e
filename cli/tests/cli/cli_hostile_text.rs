//! Text that could hide or rewrite what a terminal shows never gets into an alert (issue 9):
//! typed through the real binary, escape sequences, other control characters and
//! text-direction overrides are refused with a clear message, and nothing is posted.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::common::*;

#[test]
fn control_and_direction_characters_are_refused_when_posting() {
    let dir = tempfile::tempdir().unwrap();
    let ana = dir.path().join("ana");
    init(&ana, "Ana");
    ok(
        &ana,
        &["collective", "create", "--name", "Harbour Collective"],
    );
    for (description, area) in [
        ("\u{1b}[8mhidden from here on", "Dock Road"),
        ("\u{202E}reversed", "Dock Road"),
        ("Pulled a knife", "Dock Road\u{1b}]0;title\u{7}"),
        ("Pulled a knife", "Dock\nRoad"),
    ] {
        let args = [
            "post",
            "--category",
            "violence",
            "--description",
            description,
            "--area",
            area,
        ];
        fails(&ana, &args, 2, "control or text-direction characters");
    }
    assert!(alert_ids(&ana, &[]).is_empty(), "something was posted");
    // A description over several lines is fine.
    post(&ana, "Pulled a knife.\nDrives a blue van.", &[]);
    assert_eq!(alert_ids(&ana, &[]).len(), 1);
}
