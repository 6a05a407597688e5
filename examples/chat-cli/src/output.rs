//! What the commands print: message lines with senders by username, and
//! JSON lines with `--json`.

use std::collections::HashMap;

use chat_core::{ConversationId, GroupEvent, GroupEventKind, Message, MessageKind, Millis, Role};
use serde::Serialize;

use crate::http::Api;

/// Prints messages and values, as text or as JSON lines.
pub(crate) struct Printer {
    json: bool,
    /// Usernames by user id, so that each sender is looked up once.
    names: HashMap<String, String>,
}

impl Printer {
    /// A printer for text, or for JSON lines when `json`.
    pub(crate) fn new(json: bool) -> Self {
        Self {
            json,
            names: HashMap::new(),
        }
    }

    /// Whether output is JSON lines.
    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// One message or event: `ts conversation id sender: body`, or its JSON
    /// object. A message shows what happened to it (edited, deleted,
    /// reactions) and which message it answers; an event says what it did.
    pub(crate) async fn message(&mut self, api: &Api, message: &Message) {
        if self.json {
            println!("{}", to_json(message));
            return;
        }
        let sender = self.username(api, message.sender_id.as_str()).await;
        let target = message
            .ref_id
            .map_or_else(|| "?".to_owned(), |id| id.to_string());
        let text = match message.kind {
            MessageKind::Text => format!("{sender}: {}", self.text_of(api, message).await),
            MessageKind::Edit => format!("{sender} edited {target}: {}", message.body),
            MessageKind::Delete => format!("{sender} deleted {target}"),
            MessageKind::Reaction if message.body.is_empty() => {
                format!("{sender} took back their reaction to {target}")
            }
            MessageKind::Reaction => format!("{sender} reacted {} to {target}", message.body),
            // Group events reach clients as `group_event` frames (see `group_event`).
            MessageKind::GroupEvent => format!("{sender} changed the group"),
        };
        println!(
            "{} {} {} {text}",
            format_ts(message.ts),
            message.conversation_id,
            message.message_id
        );
    }

    /// A message's text with its reply, edit, delete and reaction marks.
    async fn text_of(&mut self, api: &Api, message: &Message) -> String {
        let mut text = String::new();
        if let Some(answered) = message.in_reply_to {
            text.push_str(&format!("(reply to {answered}) "));
        }
        if message.deleted {
            text.push_str("[deleted]");
        } else {
            text.push_str(&message.body);
        }
        if message.edited {
            text.push_str(" (edited)");
        }
        for (emoji, users) in message.reactions.by_emoji() {
            let mut names = Vec::with_capacity(users.len());
            for user in users {
                names.push(self.username(api, user.as_str()).await);
            }
            text.push_str(&format!(" [{emoji} {}]", names.join(", ")));
        }
        text
    }

    /// A membership or settings change of a group, as a line of text
    /// (`conversation * alice added bob`); JSON output lists messages only.
    pub(crate) async fn group_event(
        &mut self,
        api: &Api,
        conversation: &ConversationId,
        event: &GroupEvent,
    ) {
        if self.json {
            return;
        }
        let by = self.username(api, event.by.as_str()).await;
        let user = match &event.user_id {
            Some(user) => self.username(api, user.as_str()).await,
            None => String::new(),
        };
        let text = match event.event {
            GroupEventKind::Added if event.user_id.as_ref() == Some(&event.by) => {
                format!("{user} joined")
            }
            GroupEventKind::Added => format!("{by} added {user}"),
            GroupEventKind::Removed => format!("{by} removed {user}"),
            GroupEventKind::Left => format!("{user} left"),
            GroupEventKind::Role => match event.role.unwrap_or_default() {
                Role::Owner => format!("{user} is now the owner"),
                Role::Admin => format!("{by} made {user} an admin"),
                Role::Member => format!("{by} made {user} a member"),
            },
            GroupEventKind::Settings => format!("{by} changed the group's settings"),
        };
        println!("{conversation} * {text}");
    }

    /// A value's JSON line (for `--json`).
    pub(crate) fn value<T: Serialize>(&self, value: &T) {
        println!("{}", to_json(value));
    }

    /// A user's username, or the id itself when the server does not say
    /// (a deleted user, or no right to look): a line is better than no line.
    pub(crate) async fn username(&mut self, api: &Api, user_id: &str) -> String {
        if let Some(name) = self.names.get(user_id) {
            return name.clone();
        }
        let name = match api.user(user_id).await {
            Ok(profile) => profile.username,
            Err(_) => user_id.to_owned(),
        };
        self.names.insert(user_id.to_owned(), name.clone());
        name
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("contract types always serialize")
}

/// Milliseconds since the Unix epoch as UTC `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn format_ts(ts: Millis) -> String {
    let secs = ts.div_euclid(1000);
    let (days, secs_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01, by eras of
/// 400 years (146 097 days) that start on March 1st, so that the leap day
/// falls at the end of each year of the era.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_utc_dates() {
        assert_eq!(format_ts(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ts(1_700_000_000_999), "2023-11-14T22:13:20Z");
        assert_eq!(format_ts(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(format_ts(951_782_399_000), "2000-02-28T23:59:59Z");
        assert_eq!(format_ts(4_107_542_400_000), "2100-03-01T00:00:00Z");
        assert_eq!(format_ts(-1), "1969-12-31T23:59:59Z");
    }
}
