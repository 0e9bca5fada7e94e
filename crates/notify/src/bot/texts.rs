//! What the bot says, in Russian and English. Texts are HTML (Telegram's parse mode): only fixed markup here;
//! names from the directory are escaped where they are put in.

use tillwire_platform::web::Lang;

pub fn welcome(lang: Lang) -> &'static str {
    lang.pick(
        "Здравствуйте! Я присылаю отчёты пиццерий сети в этот чат.\n\nОтправьте код доступа, который вам выдал управляющий (в группе: <code>/code КОД</code>).",
        "Hello! I send the chain's pizzeria reports to this chat.\n\nSend the access code your manager gave you (in a group: <code>/code CODE</code>).",
    )
}

pub fn welcome_back(lang: Lang) -> &'static str {
    lang.pick(
        "С возвращением! Роль этого чата уже назначена.",
        "Welcome back! This chat already has a role.",
    )
}

pub fn help(lang: Lang) -> &'static str {
    lang.pick(
        "<b>Команды</b>\n/start — начать\n/menu — выбрать отчёты и пиццерии\n/subscriptions — мои подписки\n/code КОД — ввести код доступа (другая роль)\n/help — эта справка\n\nВ личном чате код можно отправить просто сообщением.",
        "<b>Commands</b>\n/start — begin\n/menu — choose reports and pizzerias\n/subscriptions — my subscriptions\n/code CODE — enter an access code (another role)\n/help — this help\n\nIn a private chat, just send the code as a message.",
    )
}

pub fn hint(lang: Lang) -> &'static str {
    lang.pick(
        "Я не понял. /menu — выбрать отчёты, /subscriptions — подписки, /help — справка.",
        "I did not understand. /menu — choose reports, /subscriptions — subscriptions, /help — help.",
    )
}

pub fn ask_code(lang: Lang) -> &'static str {
    lang.pick(
        "Отправьте код доступа: <code>/code КОД</code>",
        "Send the access code: <code>/code CODE</code>",
    )
}

pub fn code_accepted(lang: Lang) -> &'static str {
    lang.pick(
        "Код принят, роль назначена.",
        "Code accepted, the role is assigned.",
    )
}

pub fn wrong_code(lang: Lang) -> &'static str {
    lang.pick(
        "Такого кода доступа нет. Проверьте его и отправьте ещё раз.",
        "There is no such access code. Check it and send it again.",
    )
}

pub fn too_many_attempts(lang: Lang) -> &'static str {
    lang.pick(
        "Слишком много попыток. Подождите минуту и попробуйте снова.",
        "Too many attempts. Wait a minute and try again.",
    )
}

pub fn need_code(lang: Lang) -> &'static str {
    lang.pick(
        "Сначала отправьте код доступа.",
        "Send your access code first.",
    )
}

pub fn choose_type(lang: Lang) -> &'static str {
    lang.pick("Выберите тип отчёта:", "Choose a report type:")
}

pub fn no_types(lang: Lang) -> &'static str {
    lang.pick(
        "Ваша роль пока не даёт ни одного отчёта.",
        "Your role offers no reports yet.",
    )
}

pub fn choose_region(lang: Lang) -> &'static str {
    lang.pick("Выберите регион:", "Choose a region:")
}

pub fn toggle_units(lang: Lang) -> &'static str {
    lang.pick(
        "Нажмите на пиццерию, чтобы включить или выключить её.",
        "Tap a pizzeria to switch it on or off.",
    )
}

pub fn no_region(lang: Lang) -> &'static str {
    lang.pick("Без региона", "No region")
}

pub fn all(lang: Lang) -> &'static str {
    lang.pick("✅ Все", "✅ All")
}

pub fn none(lang: Lang) -> &'static str {
    lang.pick("⬜ Ни одной", "⬜ None")
}

pub fn back(lang: Lang) -> &'static str {
    lang.pick("« Назад", "« Back")
}

pub fn my_subscriptions(lang: Lang) -> &'static str {
    lang.pick("📋 Мои подписки", "📋 My subscriptions")
}

pub fn subscriptions_title(lang: Lang) -> &'static str {
    lang.pick(
        "<b>Подписки этого чата</b> (✖ — отписаться):",
        "<b>This chat's subscriptions</b> (✖ — unsubscribe):",
    )
}

pub fn no_subscriptions(lang: Lang) -> &'static str {
    lang.pick("Подписок пока нет.", "No subscriptions yet.")
}

pub fn choose_reports(lang: Lang) -> &'static str {
    lang.pick("⚙️ Выбрать отчёты", "⚙️ Choose reports")
}

pub fn not_available(lang: Lang) -> &'static str {
    lang.pick(
        "Это больше недоступно для вашей роли.",
        "This is no longer available to your role.",
    )
}

pub fn done(lang: Lang) -> &'static str {
    lang.pick("Готово", "Done")
}
