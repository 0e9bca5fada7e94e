//! The script language of the module doc: parsed whole first, then run on a copy of the state, so that a script
//! with a bad line changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use super::{Dish, Inner, SaleLine};

/// Why a script was refused: the line (from 1) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

/// One word of a line: `key=value` when an `=` comes before any quote, else a plain value.
#[derive(Debug)]
struct Word {
    key: Option<String>,
    value: String,
}

/// Splits a line into words: blanks separate them, double quotes keep blanks, `\"` is a quote, `#` at the start
/// of a word ends the line.
fn words(line: &str) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => return Ok(words),
            Some(_) => {}
        }
        let mut key = None;
        let mut value = String::new();
        let mut quoted = false;
        let mut seen_quote = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    quoted = !quoted;
                    seen_quote = true;
                }
                '\\' if quoted => value.push(chars.next().ok_or("a line ends in \\")?),
                '=' if !quoted && !seen_quote && key.is_none() => {
                    key = Some(std::mem::take(&mut value))
                }
                c if c.is_whitespace() && !quoted => break,
                c => value.push(c),
            }
        }
        if quoted {
            return Err("a quote is not closed".to_owned());
        }
        words.push(Word { key, value });
    }
}

/// A line's words: the plain ones in order, the named ones by key.
struct Args {
    plain: std::vec::IntoIter<String>,
    named: BTreeMap<String, String>,
}

impl Args {
    fn new(words: Vec<Word>) -> Result<Self, String> {
        let mut plain = Vec::new();
        let mut named = BTreeMap::new();
        for word in words {
            match word.key {
                Some(key) => {
                    if named.insert(key.clone(), word.value).is_some() {
                        return Err(format!("{key}= is given twice"));
                    }
                }
                None => plain.push(word.value),
            }
        }
        Ok(Args {
            plain: plain.into_iter(),
            named,
        })
    }

    fn next(&mut self, what: &str) -> Result<String, String> {
        self.plain
            .next()
            .ok_or_else(|| format!("{what} is missing"))
    }

    fn rest(&mut self) -> Vec<String> {
        self.plain.by_ref().collect()
    }

    fn take(&mut self, key: &str) -> Option<String> {
        self.named.remove(key)
    }

    fn need(&mut self, key: &str) -> Result<String, String> {
        self.take(key).ok_or_else(|| format!("{key}= is missing"))
    }

    fn number(&mut self, key: &str) -> Result<Option<i64>, String> {
        self.take(key)
            .map(|text| {
                text.parse()
                    .map_err(|_| format!("{key}={text} is not a whole number"))
            })
            .transpose()
    }

    fn flag(&mut self, key: &str) -> Result<bool, String> {
        match self.take(key).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(format!("{key}={other} is neither true nor false")),
        }
    }

    /// Refuses whatever was not used.
    fn done(mut self) -> Result<(), String> {
        if let Some(extra) = self.plain.next() {
            return Err(format!("unexpected {extra:?}"));
        }
        match self.named.keys().next() {
            Some(key) => Err(format!("unknown argument {key}=")),
            None => Ok(()),
        }
    }
}

#[derive(Debug)]
pub(super) enum Command {
    Department {
        id: String,
        name: String,
    },
    Open {
        order: String,
        department: String,
        num: i64,
        table: i64,
        waiter: String,
    },
    Add {
        order: String,
        dish: Dish,
    },
    Delete {
        order: String,
        positions: Vec<String>,
    },
    Pay {
        order: String,
    },
    Remove {
        order: String,
    },
    Sale(Box<SaleLine>),
    Wait(Duration),
}

/// `500ms`, `2s`, `1m`, `1h`.
fn duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms or 2s"))?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("{text:?} is not a duration such as 500ms or 2s")),
    };
    Ok(Duration::from_millis(number.saturating_mul(millis)))
}

fn sale(args: &mut Args) -> Result<SaleLine, String> {
    let date_text = args.need("date")?;
    let open_date = NaiveDate::parse_from_str(&date_text, "%Y-%m-%d")
        .map_err(|_| format!("date={date_text} is not yyyy-MM-dd"))?;
    let close_time = match args.take("close") {
        Some(text) => NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M"))
            .map_err(|_| format!("close={text} is not yyyy-MM-ddTHH:mm[:ss]"))?,
        None => open_date.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default()),
    };
    let sum = args.need("sum")?;
    Ok(SaleLine {
        open_date,
        department: args.need("dept")?,
        order_id: args.need("order")?,
        order_num: args.number("num")?.ok_or("num= is missing")?,
        dish_id: args.need("dish")?,
        dish_code: args.take("code").unwrap_or_default(),
        dish_name: args.need("name")?,
        dish_category: args.take("category").unwrap_or_default(),
        amount: args.need("amount")?,
        discount_sum: args.take("discount_sum").unwrap_or_else(|| sum.clone()),
        sum,
        order_deleted: args.flag("order_deleted")?,
        deleted_with_writeoff: args.flag("deleted_with_writeoff")?,
        storned: args.flag("storned")?,
        service_type: args.take("service"),
        waiter: args.take("waiter").unwrap_or_default(),
        close_time,
    })
}

fn command(words: Vec<Word>) -> Result<Command, String> {
    let mut args = Args::new(words)?;
    let verb = args.next("a command")?;
    let command = match verb.as_str() {
        "department" => Command::Department {
            id: args.next("the department id")?,
            name: args.next("the department name")?,
        },
        "open" => Command::Open {
            order: args.next("the order id")?,
            department: args.need("dept")?,
            num: args.number("num")?.ok_or("num= is missing")?,
            table: args.number("table")?.unwrap_or(0),
            waiter: args.take("waiter").unwrap_or_default(),
        },
        "add" => {
            let order = args.next("the order id")?;
            let position_id = args.next("the position id")?;
            let product_id = args.next("the product id")?;
            Command::Add {
                order,
                dish: Dish {
                    position_id,
                    product_id,
                    code: args.take("code").unwrap_or_default(),
                    name: args.need("name")?,
                    amount: args.need("amount")?,
                    price: args.need("price")?,
                },
            }
        }
        "delete" => {
            let order = args.next("the order id")?;
            let positions = args.rest();
            if positions.is_empty() {
                return Err("a position id is missing".to_owned());
            }
            Command::Delete { order, positions }
        }
        "pay" => Command::Pay {
            order: args.next("the order id")?,
        },
        "remove" => Command::Remove {
            order: args.next("the order id")?,
        },
        "sale" => Command::Sale(Box::new(sale(&mut args)?)),
        "wait" => Command::Wait(duration(&args.next("the duration")?)?),
        other => return Err(format!("unknown command {other:?}")),
    };
    args.done()?;
    Ok(command)
}

/// Every command of a script with its line number, or the first line that does not parse.
pub(super) fn parse(script: &str) -> Result<Vec<(usize, Command)>, ScriptError> {
    let mut commands = Vec::new();
    for (index, line) in script.lines().enumerate() {
        let refused = |message| ScriptError {
            line: index + 1,
            message,
        };
        let words = words(line).map_err(refused)?;
        if words.is_empty() {
            continue;
        }
        commands.push((index + 1, command(words).map_err(refused)?));
    }
    Ok(commands)
}

/// Runs parsed commands on `inner`, stopping at the first one the state refuses.
pub(super) fn run(inner: &mut Inner, commands: &[(usize, Command)]) -> Result<(), ScriptError> {
    for (line, command) in commands {
        let done = match command {
            Command::Department { id, name } => {
                inner.departments.insert(id.clone(), name.clone());
                Ok(())
            }
            Command::Open {
                order,
                department,
                num,
                table,
                waiter,
            } => inner.open_order(department, order, *num, *table, waiter),
            Command::Add { order, dish } => inner.add_items(order, std::slice::from_ref(dish)),
            Command::Delete { order, positions } => {
                let positions: Vec<&str> = positions.iter().map(String::as_str).collect();
                inner.delete_new_items(order, &positions)
            }
            Command::Pay { order } => inner.pay_order(order),
            Command::Remove { order } => inner.delete_order(order),
            Command::Sale(sale) => inner.add_sale((**sale).clone()),
            Command::Wait(by) => inner.advance(*by),
        };
        done.map_err(|message| ScriptError {
            line: *line,
            message,
        })?;
    }
    Ok(())
}

/// The demo's data: the department "Демо-пиццерия" and closed sales of the last three days (Moscow dates), no
/// open orders.
pub fn demo_script() -> String {
    let today = Utc::now()
        .with_timezone(&chrono_tz::Europe::Moscow)
        .date_naive();
    let day = |back: u64| {
        today
            .checked_sub_days(Days::new(back))
            .unwrap_or(today)
            .format("%Y-%m-%d")
            .to_string()
    };
    let (d3, d2, d1) = (day(3), day(2), day(1));
    format!(
        r#"# Demo data for the iikoServer simulator: one pizzeria, three days of closed sales.
department 5f2d7c1e-3a4b-4c6d-8e9f-0a1b2c3d4e5f "Демо-пиццерия"

sale date={d3} close={d3}T12:41:00 dept=5f2d7c1e-3a4b-4c6d-8e9f-0a1b2c3d4e5f order=d3a1-0001 num=101 dish=p-marg code=PIZZA-MARG name="Маргарита" category="Пицца" amount=2 sum=1180 waiter="Анна"
sale date={d3} close={d3}T12:41:00 dept=5f2d7c1e-3a4b-4c6d-8e9f-0a1b2c3d4e5f order=d3a1-0001 num=101 dish=p-cola code=DRINK-COLA name="Кола 0,5" category="Напитки" amount=2 sum=300 waiter="Анна"
sale date={d3} close={d3}T19:05:00 dept=5f2d7c1e-3a4b-4c6d-8e9f-0a1b2c3d4e5f order=d3a1-0002 num=102 dish=p-pepp code=PIZZA-PEPP name="Пепперони" category="Пицца" amount=1 sum=690 discount_sum=621 waiter="Олег"

sale date={d2} close={d2}T13:20:00 dept=5f2d7c1e-3a4b-4c6d-8e9f-0a1b2c3d4e5f order=d2a1-0001 num=103 dish=p-4che code=PIZZA-4CHE name="Четыре сыра" category="Пицца" amount=1 sum=740 waiter="Анна"
sale date={d2} close={d2}T13:20:00 dept=5f2d7c1e-3a4b-4c6d-8e9f-0a1b2c3d4e5f order=d2a1-0001 num=103 dish=p-tira code=DES-TIRA name="Тирамису" category="Десерты" amount=1 sum=350 waiter="Анна"
sale date={d2} close={d2}T20:10:00 dept=5f2d7c1e-3a4b-4c6d-8e9f-0a1b2c3d4e5f order=d2a1-0002 num=104 dish=p-marg code=PIZZA-MARG name="Маргарита" category="Пицца" amount=1 sum=590 service=COURIER waiter="Олег"
sale date={d2} close={d2}T21:00:00 dept=5f2d7c1e-3a4b-4c6d-8e9f-0a1b2c3d4e5f order=d2a1-0003 num=105 dish=p-pepp code=PIZZA-PEPP name="Пепперони" category="Пицца" amount=1 sum=690 order_deleted=true waiter="Олег"

sale date={d1} close={d1}T12:15:00 dept=5f2d7c1e-3a4b-4c6d-8e9f-0a1b2c3d4e5f order=d1a1-0001 num=106 dish=p-marg code=PIZZA-MARG name="Маргарита" category="Пицца" amount=3 sum=1770 discount_sum=1593 waiter="Анна"
sale date={d1} close={d1}T12:15:00 dept=5f2d7c1e-3a4b-4c6d-8e9f-0a1b2c3d4e5f order=d1a1-0001 num=106 dish=p-cola code=DRINK-COLA name="Кола 0,5" category="Напитки" amount=3 sum=450 waiter="Анна"
sale date={d1} close={d1}T18:30:00 dept=5f2d7c1e-3a4b-4c6d-8e9f-0a1b2c3d4e5f order=d1a1-0002 num=107 dish=p-4che code=PIZZA-4CHE name="Четыре сыра" category="Пицца" amount=2 sum=1480 service=PICKUP waiter="Олег"
"#
    )
}
