//! `chat-cli` run as a process against a real chat server, for what came
//! with groups with roles, invites, blocking, devices and message events:
//! each command, and each refusal shown with the server's code.

mod common;

use common::{Server, json_lines, run};

/// The members of a group as `groups members --json` lists them: (username, role).
fn members(server: &Server, user: &str, group: &str) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> =
        json_lines(&server.ok(user, &["groups", "members", group, "--json"]))
            .iter()
            .map(|m| {
                (
                    m["username"].as_str().unwrap().to_owned(),
                    m["role"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
    list.sort();
    list
}

fn pair(name: &str, role: &str) -> (String, String) {
    (name.to_owned(), role.to_owned())
}

#[test]
fn owners_and_admins_manage_members_roles_and_settings() {
    let server = Server::start();
    server.signup("alice");
    server.signup("bob");
    server.signup("carol");
    let group = server
        .ok("alice", &["groups", "create", "team", "--member", "bob"])
        .trim()
        .to_owned();
    assert_eq!(
        members(&server, "bob", &group),
        [pair("alice", "owner"), pair("bob", "member")]
    );
    let text = server.ok("alice", &["groups", "members", &group]);
    assert!(text.contains("\talice\towner"), "{text}");

    // A plain member cannot add; once an admin, bob can.
    let refused = server.fails("bob", &["groups", "add", &group, "carol"]);
    assert!(
        refused.contains("forbidden") && refused.contains("HTTP 403"),
        "{refused}"
    );
    server.ok("alice", &["groups", "role", &group, "bob", "admin"]);
    server.ok("bob", &["groups", "add", &group, "carol"]);
    assert_eq!(
        members(&server, "carol", &group),
        [
            pair("alice", "owner"),
            pair("bob", "admin"),
            pair("carol", "member")
        ]
    );

    // Only the owner changes roles; an owner is not a role one gives.
    let refused = server.fails("bob", &["groups", "role", &group, "carol", "admin"]);
    assert!(refused.contains("forbidden"), "{refused}");
    let refused = server.fails("alice", &["groups", "role", &group, "carol", "owner"]);
    assert!(refused.contains("invalid value 'owner'"), "{refused}");

    // The admin removes carol; she reads nothing of the group any more.
    server.ok("bob", &["groups", "remove", &group, "carol"]);
    let refused = server.fails("carol", &["groups", "members", &group]);
    assert!(refused.contains("HTTP 403"), "{refused}");
    let refused = server.fails("bob", &["groups", "remove", &group, "alice"]);
    assert!(
        refused.contains("forbidden"),
        "an admin cannot remove the owner: {refused}"
    );

    // Settings: any member sees them, owners and admins change them.
    let shown = server.ok("bob", &["groups", "settings", &group]);
    assert_eq!(shown, "name\tteam\njoin\tinvite\nhistory\tsince_join\n");
    server.ok("alice", &["groups", "role", &group, "bob", "member"]);
    let refused = server.fails("bob", &["groups", "settings", &group, "--join", "open"]);
    assert!(refused.contains("forbidden"), "{refused}");
    let changed = json_lines(&server.ok(
        "alice",
        &[
            "groups",
            "settings",
            &group,
            "--name",
            "team 2",
            "--join",
            "open",
            "--history",
            "all",
            "--json",
        ],
    ));
    assert_eq!(changed[0]["name"], "team 2");
    assert_eq!(changed[0]["join"], "open");
    assert_eq!(changed[0]["history"], "all");
    let refused = server.fails("alice", &["groups", "settings", &group, "--name", ""]);
    assert!(refused.contains("HTTP 400"), "{refused}");

    // Open now, but carol was removed: she cannot add herself back.
    let refused = server.fails("carol", &["groups", "add", &group, "carol"]);
    assert!(refused.contains("forbidden"), "{refused}");

    // bob hears the membership changes as lines of text, then alice's message.
    server.ok("alice", &["send", "--conversation", &group, "settled"]);
    let heard = server.ok("bob", &["listen", "--count", "1"]);
    for line in [
        "* alice made bob an admin",
        "* bob added carol",
        "* bob removed carol",
        "* alice made bob a member",
        "* alice changed the group's settings",
        "alice: settled",
    ] {
        assert!(heard.contains(line), "{line:?} in {heard}");
    }
}

#[test]
fn invite_codes_join_and_stop_working_when_used_up_or_revoked() {
    let server = Server::start();
    server.signup("alice");
    server.signup("bob");
    server.signup("carol");
    server.signup("dave");
    let group = server
        .ok("alice", &["groups", "create", "club", "--member", "bob"])
        .trim()
        .to_owned();

    let refused = server.fails("bob", &["groups", "invite", &group]);
    assert!(refused.contains("forbidden"), "a plain member: {refused}");
    let code = server
        .ok("alice", &["groups", "invite", &group, "--max-uses", "1"])
        .trim()
        .to_owned();
    assert_eq!(code.len(), 32, "{code}");

    // The web page's link works as well as the bare code.
    let link = format!("{}/#/invite/{code}", server.url);
    let joined = server.ok("carol", &["groups", "join", &link]);
    assert_eq!(joined.trim(), group);
    let gone = server.fails("dave", &["groups", "join", &code]);
    assert!(
        gone.contains("gone") && gone.contains("HTTP 410"),
        "used up: {gone}"
    );

    let second = server
        .ok(
            "alice",
            &["groups", "invite", &group, "--expires-in", "3600"],
        )
        .trim()
        .to_owned();
    server.ok("alice", &["groups", "revoke", &group, &second]);
    let gone = server.fails("dave", &["groups", "join", &second]);
    assert!(gone.contains("HTTP 410"), "revoked: {gone}");
    let unknown = server.fails("dave", &["groups", "join", &"f".repeat(32)]);
    assert!(unknown.contains("HTTP 404"), "{unknown}");
    let bad = server.fails("dave", &["groups", "join", "not a code"]);
    assert!(bad.contains("is not an invite code"), "{bad}");
    assert_eq!(
        members(&server, "alice", &group),
        [
            pair("alice", "owner"),
            pair("bob", "member"),
            pair("carol", "member")
        ]
    );

    // carol hears her own joining, then what was said after.
    server.ok("alice", &["send", "--conversation", &group, "welcome"]);
    let heard = server.ok("carol", &["listen", "--count", "1"]);
    assert!(
        heard.contains(&format!("{group} * carol joined")),
        "{heard}"
    );
    assert!(heard.contains("alice: welcome"), "{heard}");

    // A member leaves.
    server.ok("carol", &["groups", "leave", &group]);
    let refused = server.fails("carol", &["send", "--conversation", &group, "hi"]);
    assert!(refused.contains("not_member"), "{refused}");
}

#[test]
fn replies_edits_deletes_and_reactions_show_in_listen_and_history() {
    let server = Server::start();
    server.signup("alice");
    let bob = server.signup("bob");
    server.signup("carol");
    let group = server
        .ok(
            "alice",
            &[
                "groups", "create", "lunch", "--member", "bob", "--member", "carol",
            ],
        )
        .trim()
        .to_owned();
    let send = |user: &str, text: &str| {
        server
            .ok(user, &["send", "--conversation", &group, text])
            .trim()
            .to_owned()
    };
    let question = send("alice", "lunch?");
    let reply = server
        .ok("bob", &["reply", &group, &question, "yes, noon"])
        .trim()
        .to_owned();
    server.ok("alice", &["edit", &group, &question, "lunch at noon?"]);
    server.ok("bob", &["react", &group, &question, "👍"]);
    server.ok("carol", &["react", &group, &question, "🎉"]);
    server.ok("carol", &["react", &group, &question, "--remove"]);
    let typo = send("alice", "tpyo");
    server.ok("alice", &["delete", &group, &typo]);
    // The owner deletes anyone's message in her group.
    let bobs = send("bob", "off topic");
    server.ok("alice", &["delete", &group, &bobs]);

    // Each refusal is the server's code.
    for (user, args, code) in [
        (
            "bob",
            vec!["edit", &group, &question, "hijack"],
            "forbidden",
        ),
        ("bob", vec!["delete", &group, &question], "forbidden"),
        ("bob", vec!["react", &group, "1", "👍"], "not_found"),
        (
            "alice",
            vec!["edit", &group, &typo, "typo"],
            "invalid_input",
        ),
        ("bob", vec!["reply", &group, "1", "to nothing"], "not_found"),
    ] {
        let err = server.fails(user, &args);
        assert!(err.contains(code), "{args:?}: {err}");
    }
    let err = server.fails("bob", &["edit", &group, "abc", "x"]);
    assert!(err.contains("\"abc\" is not a message id"), "{err}");
    let err = server.fails("bob", &["react", &group, &question]);
    assert!(err.contains("required"), "an emoji or --remove: {err}");

    // carol hears every entry in order (her own reactions too: each device
    // gets all). Stored entries come as they are now, each event after them.
    let heard = server.ok("carol", &["listen", "--count", "10"]);
    let lines: Vec<&str> = heard
        .lines()
        .map(|l| l.split_once(' ').unwrap().1)
        .collect();
    let expected = [
        format!("{group} {question} alice: lunch at noon? (edited) [👍 bob]"),
        format!("{group} {reply} bob: (reply to {question}) yes, noon"),
        format!("alice edited {question}: lunch at noon?"),
        format!("bob reacted 👍 to {question}"),
        format!("carol reacted 🎉 to {question}"),
        format!("carol took back their reaction to {question}"),
        format!("{group} {typo} alice: [deleted]"),
        format!("alice deleted {typo}"),
        format!("{group} {bobs} bob: [deleted]"),
        format!("alice deleted {bobs}"),
    ];
    assert_eq!(lines.len(), expected.len(), "{heard}");
    for (line, want) in lines.iter().zip(&expected) {
        assert!(line.ends_with(want.as_str()), "{want:?} in {line:?}");
    }

    // History shows each message as it is now, and lists the events.
    let page = json_lines(&server.ok("bob", &["history", &group, "--json"]));
    let by_id = |id: &str| page.iter().find(|m| m["message_id"] == id).unwrap();
    let q = by_id(&question);
    assert_eq!(q["body"], "lunch at noon?");
    assert_eq!(q["edited"], true);
    assert_eq!(q["reactions"], serde_json::json!({ "👍": [bob] }));
    assert_eq!(by_id(&reply)["in_reply_to"], question.as_str());
    assert_eq!(by_id(&typo)["deleted"], true);
    assert_eq!(by_id(&typo)["body"], "");
    let text = server.ok("bob", &["history", &group]);
    assert!(
        text.contains("alice: lunch at noon? (edited) [👍 bob]"),
        "{text}"
    );
    assert!(text.contains("alice: [deleted]"), "{text}");
}

#[test]
fn interactive_mode_replies_edits_reacts_and_deletes() {
    let server = Server::start();
    server.signup("alice");
    server.signup("bob");
    let group = server
        .ok("alice", &["groups", "create", "duo", "--member", "bob"])
        .trim()
        .to_owned();
    let first = server
        .ok("alice", &["send", "--conversation", &group, "ready?"])
        .trim()
        .to_owned();
    let mine = server
        .ok("bob", &["send", "--conversation", &group, "almost"])
        .trim()
        .to_owned();
    let input = format!(
        "/group {group}\n/reply {first} yes\n/react {first} 🚀\n/edit {mine} now\n\
         /delete {first}\n/edit x y\n/react {first}\n/quit\n"
    );
    let out = run(server.cli("bob").arg("interactive"), Some(&input));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("bob: (reply to {first}) yes")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("bob reacted 🚀 to {first}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("bob edited {mine}: now")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("bob took back their reaction to {first}")),
        "{stdout}"
    );
    // Deleting alice's message is not a plain member's to do; a bad id is caught here.
    assert!(stderr.contains("(server said forbidden)"), "{stderr}");
    assert!(stderr.contains("\"x\" is not a message id"), "{stderr}");
}

#[test]
fn blocking_refuses_direct_messages_and_group_adds_until_unblocked() {
    let server = Server::start();
    let alice = server.signup("alice");
    server.signup("bob");
    server.ok("bob", &["block", "alice"]);
    assert_eq!(server.ok("bob", &["blocked"]), format!("{alice}\talice\n"));

    let refused = server.fails("alice", &["send", "--to", "bob", "hello?"]);
    assert!(refused.contains("(server said blocked)"), "{refused}");
    let refused = server.fails("alice", &["groups", "create", "x", "--member", "bob"]);
    assert!(
        refused.contains("blocked") && refused.contains("HTTP 403"),
        "{refused}"
    );
    let err = server.fails("bob", &["block", "ghost"]);
    assert!(err.contains("no user \"ghost\""), "{err}");

    server.ok("bob", &["unblock", "alice"]);
    assert_eq!(server.ok("bob", &["blocked"]), "");
    server.ok("alice", &["send", "--to", "bob", "hello again"]);
    let heard = json_lines(&server.ok("bob", &["listen", "--count", "1", "--json"]));
    assert_eq!(heard[0]["body"], "hello again");
}

#[test]
fn each_device_gets_every_message_and_can_be_logged_out() {
    let server = Server::start();
    server.signup("alice");
    let bob = server.signup("bob");
    // bob's second device: another login, with its own session file.
    assert_eq!(server.login_as_device("bob-phone", "bob", "phone"), bob);

    let listed = json_lines(&server.ok("bob", &["devices", "--json"]));
    assert_eq!(listed.len(), 2, "{listed:?}");
    let phone = listed.iter().find(|d| d["name"] == "phone").unwrap();
    assert_eq!(phone["current"], false);
    let phone_id = phone["device_id"].as_str().unwrap().to_owned();
    let text = server.ok("bob", &["devices"]);
    assert!(
        text.contains("chat-cli") && text.contains("this device"),
        "{text}"
    );

    // One message, delivered to each device (each acks for itself).
    server.ok("alice", &["send", "--to", "bob", "to both"]);
    for session in ["bob", "bob-phone"] {
        let heard = json_lines(&server.ok(session, &["listen", "--count", "1", "--json"]));
        assert_eq!(heard[0]["body"], "to both", "{session}");
    }

    // The first device logs the phone out: its token stops working.
    let err = server.fails("bob", &["logout", "no-such-device"]);
    assert!(err.contains("HTTP 404"), "{err}");
    server.ok("bob", &["logout", &phone_id]);
    let err = server.fails("bob-phone", &["conversations"]);
    assert!(err.contains("HTTP 401"), "{err}");

    // Logging this device out forgets the session too.
    server.ok("bob", &["logout"]);
    assert!(!server.session("bob").exists());
    let err = server.fails("bob", &["conversations"]);
    assert!(err.contains("not logged in"), "{err}");
}
