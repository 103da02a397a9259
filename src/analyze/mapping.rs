//! `--map`: how a bot's own JSONL maps onto the report (docs/analyze.md, "Your bot's JSONL").
//!
//! Either a TOML file (`--map bot-map.toml`) with `[fields]`, `[types]`, `[targets]` and
//! `[target_keys]` tables, or the same `[fields]` inline: `--map time=timestamp,type=event_type`
//! with `type.NAME=KIND` for `[types]` and `target.NAME=MS` for `[targets]`.

use std::path::Path;

use vigil_core::report::scan::{Kind, Mapping, TimeUnit, TypeMap};

const FIELDS: &[&str] = &[
    "time",
    "time_unit",
    "type",
    "default_type",
    "source",
    "level",
    "message",
    "error_kind",
    "stack",
    "name",
    "duration",
    "duration_unit",
    "target",
    "target_unit",
    "order_id",
    "status",
    "pnl",
    "pair",
    "qty",
    "session",
    "run",
    "heartbeat_timeout",
];

const KINDS: &str = "cycle, heartbeat, log, order, fill, position, trading_state, halt, resume, config, api_error, check, other";

fn unit_scale(v: &str) -> Result<f64, String> {
    match v {
        "ms" => Ok(1.0),
        "s" => Ok(1000.0),
        "us" => Ok(0.001),
        _ => Err(format!("`{v}`: expected ms, s or us")),
    }
}

/// Set one `[fields]` key.
fn set_field(m: &mut Mapping, key: &str, v: &toml::Value) -> Result<(), String> {
    let s = || -> Result<String, String> {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{key}: expected a string"))
    };
    let list = || -> Result<Vec<String>, String> {
        match v {
            toml::Value::String(x) => Ok(vec![x.clone()]),
            toml::Value::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{key}: expected strings"))
                })
                .collect(),
            _ => Err(format!("{key}: expected a string or a list of strings")),
        }
    };
    match key {
        "time" => m.time = list()?,
        "time_unit" => {
            m.time_unit = match s()?.as_str() {
                "ms" => TimeUnit::Millis,
                "s" => TimeUnit::Seconds,
                "auto" => TimeUnit::Auto,
                o => return Err(format!("time_unit: `{o}`: expected ms, s or auto")),
            }
        }
        "type" => m.r#type = s()?,
        "default_type" => m.default_type = Some(s()?),
        "source" => m.source = s()?,
        "level" => m.level = s()?,
        "message" => m.message = s()?,
        "error_kind" => m.error_kind = s()?,
        "stack" => m.stack = s()?,
        "name" => m.name = s()?,
        "duration" => m.duration = s()?,
        "duration_unit" => {
            m.duration_scale = unit_scale(&s()?).map_err(|e| format!("{key}: {e}"))?
        }
        "target" => m.target = s()?,
        "target_unit" => m.target_scale = unit_scale(&s()?).map_err(|e| format!("{key}: {e}"))?,
        "order_id" => m.order_id = s()?,
        "status" => m.status = s()?,
        "pnl" => m.pnl = s()?,
        "pair" => m.pair = s()?,
        "qty" => m.qty = s()?,
        "session" => m.session = list()?,
        "run" => m.run = list()?,
        "heartbeat_timeout" => m.heartbeat_timeout_key = Some(s()?),
        _ => {
            return Err(format!(
                "unknown field `{key}` (expected one of: {})",
                FIELDS.join(", ")
            ));
        }
    }
    Ok(())
}

fn type_map(name: &str, v: &toml::Value) -> Result<TypeMap, String> {
    let kind_of = |k: &str| {
        Kind::parse(k).ok_or_else(|| format!("types.{name}: `{k}`: expected one of {KINDS}"))
    };
    match v {
        toml::Value::String(k) => Ok(TypeMap {
            kind: kind_of(k)?,
            name: None,
            status: None,
        }),
        toml::Value::Table(t) => {
            for k in t.keys() {
                if !["kind", "name", "status"].contains(&k.as_str()) {
                    return Err(format!(
                        "types.{name}: unknown key `{k}` (expected kind, name, status)"
                    ));
                }
            }
            let kind = t
                .get("kind")
                .and_then(toml::Value::as_str)
                .ok_or_else(|| format!("types.{name}: `kind` (a string) is required"))?;
            let get = |k: &str| t.get(k).and_then(toml::Value::as_str).map(str::to_owned);
            Ok(TypeMap {
                kind: kind_of(kind)?,
                name: get("name"),
                status: get("status"),
            })
        }
        _ => Err(format!("types.{name}: expected a kind or a table")),
    }
}

/// The 1-based line of the first line of `text` that mentions `needle` (to locate errors).
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(needle))
        .map_or(1, |i| i + 1)
}

/// A mapping TOML file; errors as `FILE:LINE: message`.
pub fn parse_file(path: &Path, text: &str) -> Result<Mapping, String> {
    let loc = |line: usize, msg: String| format!("{}:{line}: {msg}", path.display());
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map_or(1, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        loc(line, e.message().to_owned())
    })?;
    let mut m = Mapping {
        time_unit: TimeUnit::Auto,
        ..Mapping::default()
    };
    for (section, v) in &table {
        let toml::Value::Table(t) = v else {
            return Err(loc(
                line_of(text, section),
                format!("`{section}` must be a table"),
            ));
        };
        for (k, v) in t {
            let r = match section.as_str() {
                "fields" => set_field(&mut m, k, v),
                "types" => type_map(k, v).map(|tm| {
                    m.types.insert(k.clone(), tm);
                }),
                "targets" => v
                    .as_float()
                    .or_else(|| v.as_integer().map(|i| i as f64))
                    .filter(|x| *x > 0.0)
                    .map(|x| {
                        m.targets.insert(k.clone(), x);
                    })
                    .ok_or_else(|| format!("targets.{k}: expected a number of ms > 0")),
                "target_keys" => v
                    .as_str()
                    .map(|s| {
                        m.target_keys.insert(k.clone(), s.to_owned());
                    })
                    .ok_or_else(|| format!("target_keys.{k}: expected a config key (string)")),
                other => Err(format!(
                    "unknown table `[{other}]` (expected fields, types, targets, target_keys)"
                )),
            };
            r.map_err(|e| loc(line_of(text, k), e))?;
        }
    }
    Ok(m)
}

/// `--map` inline: `key=value` pairs separated by commas.
pub fn parse_inline(spec: &str) -> Result<Mapping, String> {
    let mut m = Mapping {
        time_unit: TimeUnit::Auto,
        ..Mapping::default()
    };
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("--map: `{part}`: expected KEY=VALUE"))?;
        let val = toml::Value::String(v.to_owned());
        let r = if let Some(t) = k.strip_prefix("type.") {
            type_map(t, &val).map(|tm| {
                m.types.insert(t.to_owned(), tm);
            })
        } else if let Some(n) = k.strip_prefix("target.") {
            v.parse::<f64>()
                .ok()
                .filter(|x| *x > 0.0)
                .map(|x| {
                    m.targets.insert(n.to_owned(), x);
                })
                .ok_or_else(|| format!("target.{n}: expected a number of ms > 0"))
        } else {
            set_field(&mut m, k, &val)
        };
        r.map_err(|e| format!("--map: {e}"))?;
    }
    Ok(m)
}

/// `--map VALUE`: a file when it names one (or ends in `.toml`), inline pairs otherwise.
pub fn load(value: &str) -> Result<Mapping, String> {
    let p = Path::new(value);
    if value.ends_with(".toml") || (p.is_file() && !value.contains('=')) {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{value}: {e}"))?;
        parse_file(p, &text)
    } else {
        parse_inline(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let text = include_str!("../../docs/analyze-map.example.toml");
        let m = parse_file(Path::new("x.toml"), text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.time, vec!["timestamp".to_string()]);
        assert_eq!(
            m.types.get("MD_POLL_OVERRUN").map(|t| t.kind),
            Some(Kind::Cycle)
        );
        assert_eq!(m.duration_scale, 1000.0);
    }

    #[test]
    fn errors_are_located() {
        let e = parse_file(
            Path::new("m.toml"),
            "[fields]\ntime = \"t\"\nbogus = \"x\"\n",
        )
        .err()
        .unwrap_or_default();
        assert!(e.starts_with("m.toml:3: unknown field `bogus`"), "{e}");
        let e = parse_file(Path::new("m.toml"), "[types]\nX = \"nope\"\n")
            .err()
            .unwrap_or_default();
        assert!(e.starts_with("m.toml:2: types.X: `nope`"), "{e}");
        let e = parse_file(Path::new("m.toml"), "[fields\n")
            .err()
            .unwrap_or_default();
        assert!(e.starts_with("m.toml:1: "), "{e}");
        let e = parse_inline("time").err().unwrap_or_default();
        assert!(e.contains("expected KEY=VALUE"), "{e}");
        let m = parse_inline("time=timestamp,type=event_type,type.POLL=cycle,target.POLL=1500")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.r#type, "event_type");
        assert_eq!(m.targets.get("POLL"), Some(&1500.0));
    }
}
