//! `chat-cli` run as a process against a real chat server: accounts,
//! sending by username, listening, history, groups, errors and the REPL.

mod common;

use common::{Server, json_lines, run};

#[test]
fn a_message_sent_by_username_is_listened_to_and_in_history() {
    let server = Server::start();
    let alice = server.signup("alice");
    let bob = server.signup("bob");
    assert_ne!(alice, bob);
    assert!(alice.starts_with('u'), "a user id: {alice}");

    let sent = server.ok("alice", &["send", "--to", "bob", "hello bob"]);
    let message_id = sent.trim().to_owned();
    assert!(message_id.parse::<u64>().is_ok(), "a message id: {sent:?}");

    let heard = json_lines(&server.ok("bob", &["listen", "--count", "1", "--json"]));
    assert_eq!(heard.len(), 1, "{heard:?}");
    let m = &heard[0];
    assert_eq!(m["message_id"], message_id.as_str());
    assert_eq!(m["sender_id"], alice.as_str());
    assert_eq!(m["body"], "hello bob");
    let conversation = m["conversation_id"].as_str().unwrap().to_owned();

    // Both sides see it in the history, by conversation id or by `@user`.
    let page = json_lines(&server.ok("bob", &["history", &conversation, "--json"]));
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["body"], "hello bob");
    let text = server.ok("alice", &["history", "@bob"]);
    assert!(text.contains(&conversation), "{text}");
    assert!(text.contains("alice: hello bob"), "{text}");

    // The direct conversation is listed for bob, named by the other side.
    let list = server.ok("bob", &["conversations"]);
    assert!(
        list.contains(&conversation) && list.contains("alice"),
        "{list}"
    );
}

#[test]
fn listen_acks_so_a_message_is_shown_once() {
    let server = Server::start();
    server.signup("alice");
    server.signup("bob");
    server.ok("alice", &["send", "--to", "bob", "first"]);
    let one = server.ok("bob", &["listen", "--count", "1"]);
    assert!(one.contains("alice: first"), "{one}");

    // "first" was acked, so the next listen starts with "second".
    server.ok("alice", &["send", "--to", "bob", "second"]);
    let two = json_lines(&server.ok("bob", &["listen", "--count", "1", "--json"]));
    assert_eq!(two.len(), 1);
    assert_eq!(two[0]["body"], "second");
}

#[test]
fn messages_are_ordered_and_history_pages_by_before_and_limit() {
    let server = Server::start();
    server.signup("alice");
    server.signup("bob");
    let ids: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|body| {
            server
                .ok("alice", &["send", "--to", "bob", body])
                .trim()
                .to_owned()
        })
        .collect();
    let heard = json_lines(&server.ok("bob", &["listen", "--count", "3", "--json"]));
    let bodies: Vec<&str> = heard.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["one", "two", "three"]);

    let page = json_lines(&server.ok(
        "bob",
        &[
            "history", "@alice", "--before", &ids[2], "--limit", "1", "--json",
        ],
    ));
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["message_id"], ids[1].as_str());
}

#[test]
fn groups_are_created_joined_listed_and_left() {
    let server = Server::start();
    let alice = server.signup("alice");
    let bob = server.signup("bob");
    let carol = server.signup("carol");

    let group = server
        .ok("alice", &["groups", "create", "team", "--member", "bob"])
        .trim()
        .to_owned();
    let members = server.ok("alice", &["groups", "members", &group]);
    assert!(
        members.contains(&alice) && members.contains(&bob),
        "{members}"
    );
    assert!(!members.contains(&carol), "{members}");
    // A non-member cannot list the members: the server's refusal is shown.
    let refused = server.fails("carol", &["groups", "members", &group]);
    assert!(refused.contains("HTTP 403"), "{refused}");

    server.ok("alice", &["groups", "add", &group, "carol"]);
    let members = json_lines(&server.ok("carol", &["groups", "members", &group, "--json"]));
    let names: Vec<&str> = members
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    for name in ["alice", "bob", "carol"] {
        assert!(names.contains(&name), "{names:?}");
    }

    let sent = server.ok("carol", &["send", "--conversation", &group, "hi team"]);
    assert!(!sent.trim().is_empty());
    let heard = json_lines(&server.ok("bob", &["listen", "--count", "1", "--json"]));
    assert_eq!(heard[0]["conversation_id"], group.as_str());
    assert_eq!(heard[0]["sender_id"], carol.as_str());

    server.ok("bob", &["groups", "leave", &group]);
    let members = server.ok("alice", &["groups", "members", &group]);
    assert!(!members.contains(&bob), "{members}");
    let refused = server.fails("bob", &["send", "--conversation", &group, "still here?"]);
    assert!(refused.contains("not_member"), "{refused}");

    let list = server.ok("alice", &["conversations"]);
    assert!(list.contains(&group) && list.contains("team"), "{list}");
}

#[test]
fn a_wrong_password_fails_with_the_servers_message() {
    let server = Server::start();
    server.signup("alice");
    let err = server.fails("alice", &["login", "alice", "not-the-password"]);
    assert!(err.contains("unauthorized"), "{err}");
    assert!(err.contains("HTTP 401"), "{err}");

    // The right one logs in and prints the same user id as sign-up.
    let again = server.ok("alice", &["login", "alice", "password-alice"]);
    assert!(again.trim().starts_with('u'), "{again}");

    let taken = server.fails("alice2", &["signup", "ALICE", "another password"]);
    assert!(taken.contains("HTTP 409"), "{taken}");
    let short = server.fails("bob", &["signup", "bob", "short"]);
    assert!(short.contains("at least 8 characters"), "{short}");
    assert!(short.contains("HTTP 400"), "{short}");
}

#[test]
fn commands_without_a_session_or_with_a_bad_target_fail_clearly() {
    let server = Server::start();
    let err = server.fails("nobody", &["conversations"]);
    assert!(err.contains("not logged in"), "{err}");

    server.signup("alice");
    let err = server.fails("alice", &["send", "--to", "ghost", "boo"]);
    assert!(err.contains("no user \"ghost\""), "{err}");
}

#[test]
fn a_token_from_the_environment_replaces_the_session() {
    let server = Server::start();
    let alice = server.signup("alice");
    server.signup("bob");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(server.session("alice")).unwrap()).unwrap();
    let token = saved["token"].as_str().unwrap();
    assert_eq!(saved["user_id"], alice.as_str());

    // "nobody" has no session file: the token alone identifies alice.
    let out = run(
        server
            .cli("nobody")
            .env("CHAT_TOKEN", token)
            .args(["send", "--to", "bob", "via env"]),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let heard = json_lines(&server.ok("bob", &["listen", "--count", "1", "--json"]));
    assert_eq!(heard[0]["sender_id"], alice.as_str());
    assert_eq!(heard[0]["body"], "via env");
}

#[test]
fn interactive_mode_sends_lines_and_shows_what_arrived() {
    let server = Server::start();
    server.signup("alice");
    server.signup("bob");
    server.ok("alice", &["send", "--to", "bob", "are you there?"]);

    let out = run(
        server.cli("bob").arg("interactive"),
        Some("/to alice\nyes, here\n/history\n/nonsense\n/quit\nnot sent\n"),
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    // What arrived while away, the line sent, then both again from /history.
    assert_eq!(
        stdout.matches("alice: are you there?").count(),
        2,
        "{stdout}"
    );
    assert_eq!(stdout.matches("bob: yes, here").count(), 2, "{stdout}");
    assert!(stderr.contains("unknown command /nonsense"), "{stderr}");
    assert!(!stdout.contains("not sent"), "{stdout}");

    let page = json_lines(&server.ok("alice", &["history", "@bob", "--json"]));
    let bodies: Vec<&str> = page.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["are you there?", "yes, here"]);

    // bob's REPL acked alice's message: bob's next listen does not show it again.
    server.ok("alice", &["send", "--to", "bob", "later"]);
    let heard = json_lines(&server.ok("bob", &["listen", "--count", "1", "--json"]));
    assert_eq!(heard[0]["body"], "later");
}

#[test]
fn interactive_mode_refuses_lines_before_a_conversation_is_chosen() {
    let server = Server::start();
    server.signup("alice");
    let out = run(server.cli("alice").arg("interactive"), Some("hello?\n"));
    let stderr = String::from_utf8(out.stderr).unwrap();
    // A mistake in the REPL is reported, and the REPL ends well at the end of input.
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no conversation yet"), "{stderr}");
}
