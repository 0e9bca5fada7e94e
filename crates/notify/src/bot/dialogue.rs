//! The conversation: one update in, the replies out, with the directory as the only state. Buttons carry all they
//! need in their callback data (`t:2`, `u:2:1:15`, …, well under Telegram's 64 bytes), so an old keyboard still
//! works after a restart and two instances need not share anything but the database.

use std::net::{IpAddr, Ipv4Addr};

use serde::Deserialize;
use serde_json::{Value, json};
use tillwire_directory::DirectoryError;
use tillwire_directory::routing::Routing;
use tillwire_directory::subscriptions::{NewChat, RoleUnitItem, Subscriptions, is_wrong_code};
use tillwire_directory::{ChatType, CodeLimiter};
use tillwire_platform::web::Lang;

use super::texts;
use crate::html::escape;

/// Who the bot's writes are by, in the directory's audit log.
const ACTOR: &str = "telegram-bot";
/// The limiter counts per chat and address; every user comes through the bot, so one address stands for it.
const BOT_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Above this many units (in more than one region) a type's units are chosen region by region.
const MANY_UNITS: usize = 8;

#[derive(Debug, Deserialize)]
pub struct Update {
    pub update_id: i64,
    message: Option<Message>,
    callback_query: Option<CallbackQuery>,
}

#[derive(Debug, Deserialize)]
struct Message {
    message_id: i64,
    from: Option<User>,
    chat: Chat,
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Chat {
    id: i64,
    #[serde(rename = "type")]
    kind: String,
    title: Option<String>,
    username: Option<String>,
}

#[derive(Debug, Deserialize)]
struct User {
    first_name: String,
    last_name: Option<String>,
    language_code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    id: String,
    from: User,
    message: Option<Message>,
    data: Option<String>,
}

/// What the bot does in answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Send {
        chat_id: i64,
        text: String,
        keyboard: Option<Value>,
    },
    /// Replaces a keyboard message in place.
    Edit {
        chat_id: i64,
        message_id: i64,
        text: String,
        keyboard: Option<Value>,
    },
    /// Answers a pressed button (every callback gets exactly one).
    Answer {
        callback_id: String,
        text: Option<String>,
    },
}

/// A text with its keyboard.
struct Screen {
    text: String,
    keyboard: Value,
}

/// Which of a type's units a keyboard shows: all of them, or one region's (`0`: units without a region).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    Region(i64),
}

impl Scope {
    fn code(self) -> String {
        match self {
            Scope::All => "*".into(),
            Scope::Region(id) => id.to_string(),
        }
    }

    fn parse(text: &str) -> Option<Scope> {
        match text {
            "*" => Some(Scope::All),
            id => id.parse().ok().map(Scope::Region),
        }
    }

    fn holds(self, unit: &RoleUnitItem) -> bool {
        match self {
            Scope::All => true,
            Scope::Region(id) => unit.region_id.unwrap_or(0) == id,
        }
    }
}

/// A pressed button, from its callback data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Button {
    Menu,
    List,
    Type(i64),
    Region(i64, i64),
    Toggle(i64, Scope, i64),
    All(i64, Scope),
    None(i64, Scope),
    Remove(i64, i64),
}

impl Button {
    fn data(self) -> String {
        match self {
            Button::Menu => "m".into(),
            Button::List => "l".into(),
            Button::Type(t) => format!("t:{t}"),
            Button::Region(t, r) => format!("g:{t}:{r}"),
            Button::Toggle(t, scope, u) => format!("u:{t}:{}:{u}", scope.code()),
            Button::All(t, scope) => format!("a:{t}:{}", scope.code()),
            Button::None(t, scope) => format!("n:{t}:{}", scope.code()),
            Button::Remove(t, u) => format!("x:{t}:{u}"),
        }
    }

    fn parse(data: &str) -> Option<Button> {
        let parts: Vec<&str> = data.split(':').collect();
        let int = |i: usize| parts.get(i).and_then(|p| p.parse::<i64>().ok());
        let scope = |i: usize| parts.get(i).and_then(|p| Scope::parse(p));
        Some(match (parts.first().copied()?, parts.len()) {
            ("m", 1) => Button::Menu,
            ("l", 1) => Button::List,
            ("t", 2) => Button::Type(int(1)?),
            ("g", 3) => Button::Region(int(1)?, int(2)?),
            ("u", 4) => Button::Toggle(int(1)?, scope(2)?, int(3)?),
            ("a", 3) => Button::All(int(1)?, scope(2)?),
            ("n", 3) => Button::None(int(1)?, scope(2)?),
            ("x", 3) => Button::Remove(int(1)?, int(2)?),
            _ => return None,
        })
    }
}

fn button(text: &str, pressed: Button) -> Value {
    json!({"text": text, "callback_data": pressed.data()})
}

fn keyboard(rows: Vec<Vec<Value>>) -> Value {
    json!({ "inline_keyboard": rows })
}

/// The directory's side of the conversation and the install's language.
#[derive(Clone)]
pub struct Dialogue {
    pub directory: Subscriptions,
    pub routing: Routing,
    pub limiter: CodeLimiter,
    /// For users whose Telegram is in neither Russian nor English.
    pub language: Lang,
}

impl Dialogue {
    fn lang(&self, user: Option<&User>) -> Lang {
        match user.and_then(|u| u.language_code.as_deref()) {
            Some(code) if code.starts_with("ru") => Lang::Ru,
            Some(code) if code.starts_with("en") => Lang::En,
            _ => self.language,
        }
    }

    /// The replies to one update (none to updates the bot does not handle).
    pub async fn respond(&self, update: &Update) -> Result<Vec<Reply>, DirectoryError> {
        if let Some(query) = &update.callback_query {
            return self.pressed(query).await;
        }
        match &update.message {
            Some(message) if message.text.is_some() => self.wrote(message).await,
            _ => Ok(Vec::new()),
        }
    }

    async fn wrote(&self, message: &Message) -> Result<Vec<Reply>, DirectoryError> {
        let lang = self.lang(message.from.as_ref());
        let chat_id = message.chat.id;
        let text = message.text.as_deref().unwrap_or_default().trim();
        let send = |text: &str| -> Result<Vec<Reply>, DirectoryError> {
            Ok(vec![Reply::Send {
                chat_id,
                text: text.to_owned(),
                keyboard: None,
            }])
        };
        let (command, argument) = match text.strip_prefix('/') {
            Some(rest) => {
                let (word, argument) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                // `/start@tillwire_bot` in groups.
                let word = word.split('@').next().unwrap_or_default();
                (Some(word.to_ascii_lowercase()), argument.trim())
            }
            None => (None, text),
        };
        match command.as_deref() {
            Some("start") => {
                self.register(message).await?;
                // A user who blocked the bot and comes back takes the chat back into the fan-out.
                self.routing.reactivate(chat_id, ACTOR).await?;
                match self.directory.role(chat_id).await? {
                    Some(role) => {
                        let menu = self.menu(role, lang).await?;
                        Ok(vec![Reply::Send {
                            chat_id,
                            text: format!("{}\n\n{}", texts::welcome_back(lang), menu.text),
                            keyboard: Some(menu.keyboard),
                        }])
                    }
                    None => send(texts::welcome(lang)),
                }
            }
            Some("help") => send(texts::help(lang)),
            Some("code") if argument.is_empty() => send(texts::ask_code(lang)),
            Some("code") => self.redeem(message, argument, lang).await,
            Some("menu" | "settings" | "subscriptions") => {
                let Some(role) = self.directory.role(chat_id).await? else {
                    return send(texts::need_code(lang));
                };
                let screen = if command.as_deref() == Some("subscriptions") {
                    self.list(chat_id, lang).await?
                } else {
                    self.menu(role, lang).await?
                };
                Ok(vec![Reply::Send {
                    chat_id,
                    text: screen.text,
                    keyboard: Some(screen.keyboard),
                }])
            }
            Some(_) => send(texts::hint(lang)),
            // A group's talk is not for the bot (where Telegram shows it at all): codes come as `/code`.
            None if message.chat.kind != "private" => Ok(Vec::new()),
            // A private chat without a role has nothing to say but its code.
            None => match self.directory.role(chat_id).await? {
                None => self.redeem(message, argument, lang).await,
                Some(_) => send(texts::hint(lang)),
            },
        }
    }

    /// Registers the chat unless known: a group by its title, a private chat by its user's name.
    async fn register(&self, message: &Message) -> Result<(), DirectoryError> {
        let chat = &message.chat;
        let kind = if chat.kind == "private" {
            ChatType::Private
        } else {
            ChatType::Group
        };
        let title = chat
            .title
            .clone()
            .or_else(|| {
                message.from.as_ref().map(|user| match &user.last_name {
                    Some(last) => format!("{} {last}", user.first_name),
                    None => user.first_name.clone(),
                })
            })
            .unwrap_or_else(|| chat.id.to_string());
        let new = NewChat {
            chat_id: chat.id,
            kind,
            title: title.chars().take(255).collect(),
            username: chat.username.clone(),
        };
        self.directory.register(&new, ACTOR).await.map(|_| ())
    }

    /// Tries an access code. The code is neither logged nor repeated in any reply.
    async fn redeem(
        &self,
        message: &Message,
        code: &str,
        lang: Lang,
    ) -> Result<Vec<Reply>, DirectoryError> {
        let chat_id = message.chat.id;
        self.register(message).await?;
        let said = match self
            .directory
            .redeem(&self.limiter, BOT_ADDRESS, chat_id, code, ACTOR)
            .await
        {
            Ok(()) => {
                let role = self.directory.role(chat_id).await?.unwrap_or_default();
                let menu = self.menu(role, lang).await?;
                return Ok(vec![Reply::Send {
                    chat_id,
                    text: format!("{}\n\n{}", texts::code_accepted(lang), menu.text),
                    keyboard: Some(menu.keyboard),
                }]);
            }
            Err(DirectoryError::Throttled) => texts::too_many_attempts(lang),
            Err(error) if is_wrong_code(&error) => texts::wrong_code(lang),
            Err(error) => return Err(error),
        };
        Ok(vec![Reply::Send {
            chat_id,
            text: said.to_owned(),
            keyboard: None,
        }])
    }

    async fn pressed(&self, query: &CallbackQuery) -> Result<Vec<Reply>, DirectoryError> {
        let lang = self.lang(Some(&query.from));
        let answer = |text: Option<&str>| Reply::Answer {
            callback_id: query.id.clone(),
            text: text.map(str::to_owned),
        };
        let (Some(message), Some(pressed)) = (
            &query.message,
            query.data.as_deref().and_then(Button::parse),
        ) else {
            return Ok(vec![answer(Some(texts::not_available(lang)))]);
        };
        let chat_id = message.chat.id;
        let Some(role) = self.directory.role(chat_id).await? else {
            return Ok(vec![answer(Some(texts::need_code(lang)))]);
        };
        let (screen, notice) = match self.press(chat_id, role, pressed, lang).await {
            Ok(done) => done,
            // A button of a type or unit the role (or the chain) no longer offers.
            Err(DirectoryError::Forbidden(_)) => (
                self.menu(role, lang).await?,
                Some(texts::not_available(lang)),
            ),
            Err(error) => return Err(error),
        };
        Ok(vec![
            Reply::Edit {
                chat_id,
                message_id: message.message_id,
                text: screen.text,
                keyboard: Some(screen.keyboard),
            },
            answer(notice),
        ])
    }

    /// Does what a button says; the screen to show after it, and a notice.
    async fn press(
        &self,
        chat_id: i64,
        role: i64,
        pressed: Button,
        lang: Lang,
    ) -> Result<(Screen, Option<&'static str>), DirectoryError> {
        let directory = &self.directory;
        Ok(match pressed {
            Button::Menu => (self.menu(role, lang).await?, None),
            Button::List => (self.list(chat_id, lang).await?, None),
            Button::Type(t) => (self.units(chat_id, role, t, Scope::All, lang).await?, None),
            Button::Region(t, r) => (
                self.units(chat_id, role, t, Scope::Region(r), lang).await?,
                None,
            ),
            Button::Toggle(t, scope, unit) => {
                let on = directory
                    .of_chat(chat_id)
                    .await?
                    .iter()
                    .any(|s| s.report_type_id == t && s.unit_id == unit);
                if on {
                    directory.remove(chat_id, t, &[unit], ACTOR).await?;
                } else {
                    directory.ensure(chat_id, t, &[unit], ACTOR).await?;
                }
                (self.units(chat_id, role, t, scope, lang).await?, None)
            }
            Button::All(t, scope) | Button::None(t, scope) => {
                let units: Vec<i64> = directory
                    .units(role)
                    .await?
                    .iter()
                    .filter(|u| scope.holds(u))
                    .map(|u| u.id)
                    .collect();
                if matches!(pressed, Button::All(..)) {
                    directory.ensure(chat_id, t, &units, ACTOR).await?;
                } else {
                    directory.remove(chat_id, t, &units, ACTOR).await?;
                }
                (
                    self.units(chat_id, role, t, scope, lang).await?,
                    Some(texts::done(lang)),
                )
            }
            Button::Remove(t, unit) => {
                directory.remove(chat_id, t, &[unit], ACTOR).await?;
                (self.list(chat_id, lang).await?, None)
            }
        })
    }

    /// The report types the role offers.
    async fn menu(&self, role: i64, lang: Lang) -> Result<Screen, DirectoryError> {
        let types = self.directory.report_types(role).await?;
        let mut rows = Vec::new();
        for t in &types {
            let label = self.routing.label(&t.name, lang).await?;
            rows.push(vec![button(&label, Button::Type(t.id))]);
        }
        rows.push(vec![button(texts::my_subscriptions(lang), Button::List)]);
        let text = if types.is_empty() {
            texts::no_types(lang)
        } else {
            texts::choose_type(lang)
        };
        Ok(Screen {
            text: text.to_owned(),
            keyboard: keyboard(rows),
        })
    }

    /// A type's units in `scope`, each switched on or off, or (many units, several regions) its regions first.
    async fn units(
        &self,
        chat_id: i64,
        role: i64,
        report_type: i64,
        scope: Scope,
        lang: Lang,
    ) -> Result<Screen, DirectoryError> {
        let Some(offered) = self
            .directory
            .report_types(role)
            .await?
            .into_iter()
            .find(|t| t.id == report_type)
        else {
            return Err(DirectoryError::Forbidden(texts::not_available(lang).into()));
        };
        let label = escape(&self.routing.label(&offered.name, lang).await?);
        let units = self.directory.units(role).await?;
        let on: Vec<i64> = self
            .directory
            .of_chat(chat_id)
            .await?
            .into_iter()
            .filter(|s| s.report_type_id == report_type)
            .map(|s| s.unit_id)
            .collect();
        let regions = self.directory.regions(role).await?;
        let region_name = |id: i64| {
            regions
                .iter()
                .find(|r| r.id == id)
                .map_or_else(|| texts::no_region(lang).to_owned(), |r| r.name.clone())
        };
        let mut region_ids: Vec<i64> = units.iter().map(|u| u.region_id.unwrap_or(0)).collect();
        region_ids.sort_unstable();
        region_ids.dedup();
        let grouped = units.len() > MANY_UNITS && region_ids.len() > 1;
        let ends = |scope: Scope, back: Button| {
            vec![
                vec![
                    button(texts::all(lang), Button::All(report_type, scope)),
                    button(texts::none(lang), Button::None(report_type, scope)),
                ],
                vec![button(texts::back(lang), back)],
            ]
        };
        if grouped && scope == Scope::All {
            let mut rows: Vec<Vec<Value>> = region_ids
                .iter()
                .map(|&region| {
                    let in_region: Vec<&RoleUnitItem> = units
                        .iter()
                        .filter(|u| Scope::Region(region).holds(u))
                        .collect();
                    let count = in_region.iter().filter(|u| on.contains(&u.id)).count();
                    vec![button(
                        &format!("{} ({count}/{})", region_name(region), in_region.len()),
                        Button::Region(report_type, region),
                    )]
                })
                .collect();
            rows.extend(ends(Scope::All, Button::Menu));
            return Ok(Screen {
                text: format!("<b>{label}</b>\n{}", texts::choose_region(lang)),
                keyboard: keyboard(rows),
            });
        }
        let mut rows: Vec<Vec<Value>> = units
            .iter()
            .filter(|u| scope.holds(u))
            .map(|u| {
                let mark = if on.contains(&u.id) { "✅" } else { "⬜" };
                vec![button(
                    &format!("{mark} {}", u.name),
                    Button::Toggle(report_type, scope, u.id),
                )]
            })
            .collect();
        let (heading, back) = match scope {
            Scope::Region(region) if grouped => (
                format!("<b>{label}</b> · {}", escape(&region_name(region))),
                Button::Type(report_type),
            ),
            _ => (format!("<b>{label}</b>"), Button::Menu),
        };
        rows.extend(ends(scope, back));
        Ok(Screen {
            text: format!("{heading}\n{}", texts::toggle_units(lang)),
            keyboard: keyboard(rows),
        })
    }

    /// The chat's subscriptions by type, each removable.
    async fn list(&self, chat_id: i64, lang: Lang) -> Result<Screen, DirectoryError> {
        let subscriptions = self.directory.of_chat(chat_id).await?;
        if subscriptions.is_empty() {
            return Ok(Screen {
                text: texts::no_subscriptions(lang).to_owned(),
                keyboard: keyboard(vec![vec![button(
                    texts::choose_reports(lang),
                    Button::Menu,
                )]]),
            });
        }
        let mut text = texts::subscriptions_title(lang).to_owned();
        let mut rows = Vec::new();
        let mut current = None;
        let mut label = String::new();
        for s in &subscriptions {
            if current != Some(s.report_type_id) {
                current = Some(s.report_type_id);
                label = self.routing.label(&s.report_type, lang).await?;
                text.push_str(&format!("\n\n<b>{}</b>", escape(&label)));
            }
            text.push_str(&format!("\n• {}", escape(&s.unit)));
            rows.push(vec![button(
                &format!("✖ {label}: {}", s.unit),
                Button::Remove(s.report_type_id, s.unit_id),
            )]);
        }
        rows.push(vec![button(texts::back(lang), Button::Menu)]);
        Ok(Screen {
            text,
            keyboard: keyboard(rows),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_read_back_what_they_wrote_within_telegrams_limit() {
        let region = Scope::Region(123_456);
        for pressed in [
            Button::Menu,
            Button::List,
            Button::Type(20),
            Button::Region(20, 0),
            Button::Toggle(i64::MAX, region, i64::MAX),
            Button::Toggle(2, Scope::All, 15),
            Button::All(2, Scope::All),
            Button::None(2, region),
            Button::Remove(i64::MAX, i64::MAX),
        ] {
            let data = pressed.data();
            assert!(data.len() <= 64, "{data}");
            assert_eq!(Button::parse(&data), Some(pressed), "{data}");
        }
        for junk in ["", "t", "t:x", "u:1:2", "q:1", "m:1", "a:1:?"] {
            assert_eq!(Button::parse(junk), None, "{junk}");
        }
    }
}
