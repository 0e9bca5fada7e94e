//! The scenario scripts of the module doc: read whole first (a wrong line stops the script before anything
//! happens), then run line by line against the same state changes the setters make.

use std::collections::BTreeMap;
use std::time::Duration;

use super::CloudSim;
use super::state::decimal;

/// A script line that could not be read or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScriptError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

/// A small world for the demo and `tillwire sim iiko-cloud`: one pizzeria on Moscow time, two tables and four
/// products with kopecks in their prices; no orders.
pub fn demo_script() -> &'static str {
    r#"# Демо-пиццерия: one organization, one terminal group on Moscow time, two tables, four products.
org 0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d01 "Демо-пиццерия"
terminal 0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d02 org=0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d01 tz="Russian Standard Time" name="Основная группа"
table 0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d11 org=0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d01 number=1
table 0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d12 org=0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d01 number=2
product 0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d21 org=0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d01 code=PIZZA-MARG name="Пицца Маргарита" price=549.90
product 0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d22 org=0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d01 code=PIZZA-PEPP name="Пицца Пепперони" price=629.50
product 0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d23 org=0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d01 code=LEMONADE name="Лимонад домашний" price=189.99
product 0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d24 org=0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d01 code=TIRAMISU name="Тирамису" price=345.45
"#
}

/// The longest `wait`: enough for any retention window, and far from the clock's limits.
const LONGEST_WAIT: Duration = Duration::from_secs(366 * 24 * 3600);

enum Command {
    Org {
        id: String,
        name: String,
    },
    Terminal {
        id: String,
        org: String,
        tz: String,
        name: String,
    },
    Table {
        id: String,
        org: String,
        number: i64,
    },
    Product {
        id: String,
        org: String,
        code: String,
        name: String,
        price: String,
    },
    Open {
        order: String,
        org: String,
        terminal: String,
        table: String,
        number: i64,
    },
    Delivery {
        order: String,
        org: String,
        terminal: String,
        number: i64,
    },
    Add {
        order: String,
        position: String,
        product: String,
        amount: String,
    },
    Delete {
        order: String,
        position: String,
    },
    Status {
        order: String,
        status: String,
    },
    ItemStatus {
        order: String,
        position: String,
        status: String,
    },
    Wait(Duration),
}

impl CloudSim {
    /// Runs a script; `wait` moves the sim's clock without sleeping. See the module doc for the commands.
    pub fn run_script(&self, script: &str) -> Result<(), ScriptError> {
        for (line, command) in parse(script)? {
            self.apply(&command)
                .map_err(|message| ScriptError { line, message })?;
        }
        Ok(())
    }

    /// Runs a script as a live scenario: each `wait` moves the sim's clock and also really waits.
    pub async fn play_script(&self, script: &str) -> Result<(), ScriptError> {
        for (line, command) in parse(script)? {
            self.apply(&command)
                .map_err(|message| ScriptError { line, message })?;
            if let Command::Wait(pause) = command {
                tokio::time::sleep(pause).await;
            }
        }
        Ok(())
    }

    fn apply(&self, command: &Command) -> Result<(), String> {
        let queued = self.with(|inner| match command {
            Command::Org { id, name } => {
                inner.add_organization(id, name);
                Ok(false)
            }
            Command::Terminal { id, org, tz, name } => {
                inner.add_terminal_group(org, id, name, tz).map(|()| false)
            }
            Command::Table { id, org, number } => inner.add_table(org, id, *number).map(|()| false),
            Command::Product {
                id,
                org,
                code,
                name,
                price,
            } => inner
                .add_product(org, id, code, name, price)
                .map(|()| false),
            Command::Open {
                order,
                org,
                terminal,
                table,
                number,
            } => inner.open_table_order(org, terminal, table, order, *number),
            Command::Delivery {
                order,
                org,
                terminal,
                number,
            } => inner.create_delivery(org, terminal, order, *number),
            Command::Add {
                order,
                position,
                product,
                amount,
            } => inner.add_item(order, position, product, amount),
            Command::Delete { order, position } => inner.delete_item(order, position),
            Command::Status { order, status } => inner.set_status(order, status, None),
            Command::ItemStatus {
                order,
                position,
                status,
            } => inner.set_item_status(order, position, status),
            Command::Wait(pause) => {
                inner.advance(*pause);
                Ok(false)
            }
        })?;
        self.queued(queued);
        Ok(())
    }
}

/// Every command of the script with its line number, or the first line that cannot be read.
fn parse(script: &str) -> Result<Vec<(usize, Command)>, ScriptError> {
    let mut commands = Vec::new();
    for (index, text) in script.lines().enumerate() {
        let line = index + 1;
        let error = |message: String| ScriptError { line, message };
        let tokens = tokenize(text).map_err(error)?;
        if tokens.is_empty() {
            continue;
        }
        commands.push((line, command(tokens).map_err(error)?));
    }
    Ok(commands)
}

/// A word of a line: `value`, or `key=value` (either part may be quoted).
struct Token {
    key: Option<String>,
    value: String,
}

fn tokenize(line: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => return Ok(tokens),
            Some(_) => {}
        }
        let (mut key, mut value, mut quoted) = (None, String::new(), false);
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            match c {
                '"' => {
                    quoted = true;
                    loop {
                        match chars.next() {
                            None => return Err("a quote is not closed".into()),
                            Some('"') => break,
                            Some('\\') => value.push(chars.next().ok_or("a quote is not closed")?),
                            Some(other) => value.push(other),
                        }
                    }
                }
                '=' if key.is_none() && !quoted => key = Some(std::mem::take(&mut value)),
                other => value.push(other),
            }
        }
        tokens.push(Token { key, value });
    }
}

/// A line's words sorted into positional arguments and options, used up by the command that reads them.
struct Words {
    name: String,
    positional: std::vec::IntoIter<String>,
    options: BTreeMap<String, String>,
}

impl Words {
    fn next(&mut self, what: &str) -> Result<String, String> {
        self.positional
            .next()
            .ok_or_else(|| format!("{}: {what} is missing", self.name))
    }

    fn option(&mut self, key: &str) -> Result<String, String> {
        self.options
            .remove(key)
            .ok_or_else(|| format!("{}: {key}=… is missing", self.name))
    }

    fn number(&mut self, key: &str) -> Result<i64, String> {
        let text = self.option(key)?;
        text.parse()
            .map_err(|_| format!("{}: {key}={text} is not a whole number", self.name))
    }

    fn decimal(&mut self, key: &str, default: Option<&str>) -> Result<String, String> {
        let text = match (self.options.remove(key), default) {
            (Some(text), _) => text,
            (None, Some(default)) => default.to_owned(),
            (None, None) => return Err(format!("{}: {key}=… is missing", self.name)),
        };
        match decimal(&text) {
            Some(_) => Ok(text),
            None => Err(format!("{}: {key}={text} is not a number", self.name)),
        }
    }

    /// Fails on words the command did not use.
    fn done(mut self) -> Result<(), String> {
        if let Some(extra) = self.positional.next() {
            return Err(format!("{}: unexpected {extra:?}", self.name));
        }
        match self.options.keys().next() {
            Some(key) => Err(format!("{}: unknown option {key}", self.name)),
            None => Ok(()),
        }
    }
}

fn command(tokens: Vec<Token>) -> Result<Command, String> {
    let mut positional = Vec::new();
    let mut options = BTreeMap::new();
    for token in tokens {
        match token.key {
            Some(key) if key.is_empty() => {
                return Err(format!("{:?} has no option name", token.value));
            }
            Some(key) => {
                if options.insert(key.clone(), token.value).is_some() {
                    return Err(format!("option {key} is given twice"));
                }
            }
            None => positional.push(token.value),
        }
    }
    let mut positional = positional.into_iter();
    let name = positional.next().ok_or("a line starts with an option")?;
    let mut words = Words {
        name: name.clone(),
        positional,
        options,
    };
    let command = match name.as_str() {
        "org" => {
            let id = words.next("the organization id")?;
            let name = match words.options.remove("name") {
                Some(name) => name,
                None => words.next("the name")?,
            };
            Command::Org { id, name }
        }
        "terminal" => {
            let id = words.next("the terminal group id")?;
            Command::Terminal {
                org: words.option("org")?,
                tz: words.option("tz")?,
                name: words.options.remove("name").unwrap_or_else(|| id.clone()),
                id,
            }
        }
        "table" => Command::Table {
            id: words.next("the table id")?,
            org: words.option("org")?,
            number: words.number("number")?,
        },
        "product" => Command::Product {
            id: words.next("the product id")?,
            org: words.option("org")?,
            code: words.option("code")?,
            name: words.option("name")?,
            price: words.decimal("price", None)?,
        },
        "open" => Command::Open {
            order: words.next("the order id")?,
            org: words.option("org")?,
            terminal: words.option("terminal")?,
            table: words.option("table")?,
            number: words.number("number")?,
        },
        "delivery" => Command::Delivery {
            order: words.next("the order id")?,
            org: words.option("org")?,
            terminal: words.option("terminal")?,
            number: words.number("number")?,
        },
        "add" => Command::Add {
            order: words.next("the order id")?,
            position: words.next("the position id")?,
            product: words.next("the product id")?,
            amount: words.decimal("amount", Some("1"))?,
        },
        "delete" => Command::Delete {
            order: words.next("the order id")?,
            position: words.next("the position id")?,
        },
        "status" => Command::Status {
            order: words.next("the order id")?,
            status: words.next("the status")?,
        },
        "item-status" => Command::ItemStatus {
            order: words.next("the order id")?,
            position: words.next("the position id")?,
            status: words.next("the status")?,
        },
        "wait" => {
            let text = words.next("the duration")?;
            Command::Wait(duration(&text).ok_or_else(|| {
                format!(
                    "wait: {text:?} is not a duration such as 500ms, 2s, 5m or 1h (at most a year)"
                )
            })?)
        }
        other => return Err(format!("unknown command {other:?}")),
    };
    words.done()?;
    Ok(command)
}

/// `500ms`, `2s`, `1.5s`, `5m`, `1h`.
fn duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (amount, unit) = text.split_at(split);
    let amount: f64 = amount.parse().ok()?;
    let seconds = match unit {
        "ms" => amount / 1000.0,
        "s" => amount,
        "m" | "min" => amount * 60.0,
        "h" => amount * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|pause| *pause <= LONGEST_WAIT)
}
