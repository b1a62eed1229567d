//! `COMMAND`: what the node implements, from the command table. `COMMAND DOCS` turns each
//! command's documented syntax into Redis's argument tree, which redis-cli uses for hints.

use bytes::Bytes;
use cachalot_protocol::encode;

use super::keys::{check_subcommand, help_reply};
use super::table::{CommandSpec, Flags, Subcommand, COMMANDS, HELP_SUBCOMMAND};
use super::{lookup, CommandResult, Ctx};

/// `COMMAND` subcommands.
pub static SUBCOMMANDS: &[Subcommand] = &[
    Subcommand {
        name: "count",
        arity: 2,
        key: 0,
        summary: "Returns a count of commands.",
        syntax: "",
    },
    Subcommand {
        name: "info",
        arity: -2,
        key: 0,
        summary: "Returns information about one, multiple or all commands.",
        syntax: "[command-name [command-name ...]]",
    },
    Subcommand {
        name: "docs",
        arity: -2,
        key: 0,
        summary: "Returns documentary information about one, multiple or all commands.",
        syntax: "[command-name [command-name ...]]",
    },
    Subcommand {
        name: "list",
        arity: 2,
        key: 0,
        summary: "Returns a list of command names.",
        syntax: "",
    },
    HELP_SUBCOMMAND,
];

const HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all commands.",
    "COUNT",
    "    Return the total number of commands in this server.",
    "LIST",
    "    Return a list of all commands in this server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "HELP",
    "    Prints this help.",
];

/// `COMMAND`: see the command table for syntax.
pub fn command(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    if args.len() == 1 {
        ctx.array(COMMANDS.len());
        for c in COMMANDS {
            write_info(ctx, c);
        }
        return Ok(());
    }
    check_subcommand(args, SUBCOMMANDS, "command")?;
    let sub = &args[1];
    let named = || -> Vec<Option<&'static CommandSpec>> {
        args[2..]
            .iter()
            .map(|n| lookup(n).map(|(_, c)| c))
            .collect()
    };
    if super::is(sub, "count") {
        ctx.int(COMMANDS.len() as i64)
    } else if super::is(sub, "list") {
        ctx.bulk_array(COMMANDS.iter().map(|c| c.name))
    } else if super::is(sub, "info") {
        let specs: Vec<Option<&CommandSpec>> = if args.len() == 2 {
            COMMANDS.iter().map(Some).collect()
        } else {
            named()
        };
        ctx.array(specs.len());
        for spec in specs {
            match spec {
                Some(c) => write_info(ctx, c),
                // Redis answers an unknown name with a null (`$-1` in RESP2).
                None => encode::write_null(ctx.out, ctx.session.version),
            }
        }
        Ok(())
    } else if super::is(sub, "docs") {
        let specs: Vec<&CommandSpec> = if args.len() == 2 {
            COMMANDS.iter().collect()
        } else {
            named().into_iter().flatten().collect()
        };
        ctx.map(specs.len());
        for c in specs {
            encode::write_bulk(ctx.out, c.name.as_bytes());
            write_docs(
                ctx,
                c.summary,
                c.since,
                c.group,
                c.syntax,
                c.subcommands,
                c.name,
            );
        }
        Ok(())
    } else {
        help_reply(ctx, HELP)
    }
}

fn acl_categories(c: &CommandSpec) -> Vec<&'static str> {
    let mut cats = Vec::new();
    if c.flags.contains(Flags::WRITE) {
        cats.push("@write");
    }
    if c.flags.contains(Flags::READONLY) {
        cats.push("@read");
    }
    cats.push(match c.group {
        "string" => "@string",
        "hash" => "@hash",
        "generic" => "@keyspace",
        "connection" => "@connection",
        _ => "@admin",
    });
    if c.flags.contains(Flags::ADMIN) {
        cats.push("@dangerous");
    }
    cats.push(if c.flags.contains(Flags::FAST) {
        "@fast"
    } else {
        "@slow"
    });
    cats
}

fn write_flags(ctx: &mut Ctx<'_>, names: &[&str]) {
    ctx.set(names.len());
    for n in names {
        encode::write_simple(ctx.out, n.as_bytes());
    }
}

/// One `COMMAND INFO` entry in Redis 7's ten-element layout.
fn write_info(ctx: &mut Ctx<'_>, c: &CommandSpec) {
    ctx.array(10);
    encode::write_bulk(ctx.out, c.name.as_bytes());
    encode::write_integer(ctx.out, i64::from(c.arity));
    write_flags(ctx, &c.flags.names());
    encode::write_integer(ctx.out, i64::from(c.first_key));
    encode::write_integer(ctx.out, i64::from(c.last_key));
    encode::write_integer(ctx.out, i64::from(c.step));
    write_flags(ctx, &acl_categories(c));
    ctx.array(0); // tips
    if c.first_key > 0 {
        ctx.array(1);
        write_key_spec(ctx, c);
    } else {
        ctx.array(0);
    }
    ctx.array(c.subcommands.len());
    for s in c.subcommands {
        ctx.array(10);
        encode::write_bulk(ctx.out, format!("{}|{}", c.name, s.name).as_bytes());
        encode::write_integer(ctx.out, i64::from(s.arity));
        write_flags(ctx, &c.flags.names());
        let (first, last, step) = if s.key > 0 {
            (s.key, s.key, 1)
        } else {
            (0, 0, 0)
        };
        for n in [first, last, step] {
            encode::write_integer(ctx.out, i64::from(n));
        }
        write_flags(ctx, &acl_categories(c));
        ctx.array(0);
        ctx.array(0);
        ctx.array(0);
    }
}

fn write_key_spec(ctx: &mut Ctx<'_>, c: &CommandSpec) {
    let write = c.flags.contains(Flags::WRITE);
    let lastkey = if c.last_key < 0 {
        c.last_key
    } else {
        c.last_key - c.first_key
    };
    ctx.map(3);
    // Redis spells the access kinds in lower case and the RO/RW/OW/RM ones in upper case.
    encode::write_bulk(ctx.out, b"flags");
    write_flags(
        ctx,
        if write {
            &["RW", "update"]
        } else {
            &["RO", "access"]
        },
    );
    encode::write_bulk(ctx.out, b"begin_search");
    ctx.map(2);
    encode::write_bulk(ctx.out, b"type");
    encode::write_bulk(ctx.out, b"index");
    encode::write_bulk(ctx.out, b"spec");
    ctx.map(1);
    encode::write_bulk(ctx.out, b"index");
    encode::write_integer(ctx.out, i64::from(c.first_key));
    encode::write_bulk(ctx.out, b"find_keys");
    ctx.map(2);
    encode::write_bulk(ctx.out, b"type");
    encode::write_bulk(ctx.out, b"range");
    encode::write_bulk(ctx.out, b"spec");
    ctx.map(3);
    encode::write_bulk(ctx.out, b"lastkey");
    encode::write_integer(ctx.out, i64::from(lastkey));
    encode::write_bulk(ctx.out, b"keystep");
    encode::write_integer(ctx.out, i64::from(c.step));
    encode::write_bulk(ctx.out, b"limit");
    encode::write_integer(ctx.out, 0);
}

fn write_docs(
    ctx: &mut Ctx<'_>,
    summary: &str,
    since: &str,
    group: &str,
    syntax: &str,
    subs: &[Subcommand],
    container: &str,
) {
    let args = parse_syntax(syntax);
    let fields = 3 + usize::from(!args.is_empty()) + usize::from(!subs.is_empty());
    ctx.map(fields);
    encode::write_bulk(ctx.out, b"summary");
    encode::write_bulk(ctx.out, summary.as_bytes());
    encode::write_bulk(ctx.out, b"since");
    encode::write_bulk(ctx.out, since.as_bytes());
    encode::write_bulk(ctx.out, b"group");
    encode::write_bulk(ctx.out, group.as_bytes());
    if !args.is_empty() {
        encode::write_bulk(ctx.out, b"arguments");
        write_args(ctx, &args);
    }
    if !subs.is_empty() {
        encode::write_bulk(ctx.out, b"subcommands");
        ctx.map(subs.len());
        for s in subs {
            encode::write_bulk(ctx.out, format!("{container}|{}", s.name).as_bytes());
            write_docs(ctx, s.summary, since, group, s.syntax, &[], container);
        }
    }
}

/// One argument of a command's documented syntax, as `COMMAND DOCS` describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// Argument name (lower case).
    pub name: String,
    /// Redis's argument type: `key`, `string`, `integer`, `pattern`, `unix-time`,
    /// `pure-token`, `oneof` or `block`.
    pub kind: &'static str,
    /// The literal token that introduces it (`EX` in `EX seconds`).
    pub token: Option<String>,
    /// `[...]`.
    pub optional: bool,
    /// `arg [arg ...]`.
    pub multiple: bool,
    /// Children of `oneof` and `block`.
    pub children: Vec<Arg>,
}

fn write_args(ctx: &mut Ctx<'_>, args: &[Arg]) {
    ctx.array(args.len());
    for a in args {
        let mut flags = Vec::new();
        if a.optional {
            flags.push("optional");
        }
        if a.multiple {
            flags.push("multiple");
        }
        let fields = 2
            + usize::from(a.token.is_some())
            + usize::from(!flags.is_empty())
            + usize::from(!a.children.is_empty());
        ctx.map(fields);
        encode::write_bulk(ctx.out, b"name");
        encode::write_bulk(ctx.out, a.name.as_bytes());
        encode::write_bulk(ctx.out, b"type");
        encode::write_bulk(ctx.out, a.kind.as_bytes());
        if let Some(t) = &a.token {
            encode::write_bulk(ctx.out, b"token");
            encode::write_bulk(ctx.out, t.as_bytes());
        }
        if !flags.is_empty() {
            encode::write_bulk(ctx.out, b"flags");
            write_flags(ctx, &flags);
        }
        if !a.children.is_empty() {
            encode::write_bulk(ctx.out, b"arguments");
            write_args(ctx, &a.children);
        }
    }
}

fn kind_of(name: &str) -> &'static str {
    match name {
        "key" | "newkey" | "source" | "destination" => "key",
        "pattern" => "pattern",
        "unix-time-seconds" | "unix-time-milliseconds" => "unix-time",
        "seconds" | "milliseconds" | "count" | "offset" | "increment" | "decrement" | "start"
        | "end" | "index" | "cursor" | "protover" | "client-id" | "maxage" | "destination-db" => {
            "integer"
        }
        _ => "string",
    }
}

fn is_token(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_uppercase())
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
}

/// Parses Redis's documentation notation (`key value [NX | XX] [EX seconds | KEEPTTL]`)
/// into an argument tree. Unknown shapes degrade to plain string arguments.
pub fn parse_syntax(syntax: &str) -> Vec<Arg> {
    let spaced = syntax
        .replace('[', " [ ")
        .replace(']', " ] ")
        .replace('|', " | ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut pos = 0;
    parse_alternatives(&tokens, &mut pos, false)
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// Parses sequences separated by `|` until `]` (inside a group) or the end.
fn parse_alternatives(tokens: &[&str], pos: &mut usize, nested: bool) -> Vec<Vec<Arg>> {
    let mut alts = vec![Vec::new()];
    while *pos < tokens.len() {
        let t = tokens[*pos];
        *pos += 1;
        match t {
            "]" if nested => break,
            "|" => alts.push(Vec::new()),
            "[" => {
                let inner = parse_alternatives(tokens, pos, true);
                let seq = alts.last_mut().expect("invariant: alts is never empty");
                push_group(seq, inner);
            }
            "..." => {
                if let Some(last) = alts.last_mut().and_then(|s| s.last_mut()) {
                    last.multiple = true;
                }
            }
            word => {
                let seq = alts.last_mut().expect("invariant: alts is never empty");
                let merges = seq
                    .last()
                    .is_some_and(|p| p.kind == "pure-token" && !p.optional && !is_token(word));
                if merges {
                    if let Some(prev) = seq.last_mut() {
                        prev.kind = kind_of(word);
                        prev.name = word.to_string();
                    }
                } else if is_token(word) {
                    seq.push(Arg {
                        name: word.to_ascii_lowercase(),
                        kind: "pure-token",
                        token: Some(word.to_string()),
                        optional: false,
                        multiple: false,
                        children: Vec::new(),
                    });
                } else {
                    seq.push(Arg {
                        name: word.to_string(),
                        kind: kind_of(word),
                        token: None,
                        optional: false,
                        multiple: false,
                        children: Vec::new(),
                    });
                }
            }
        }
    }
    alts
}

/// The name of a group of arguments: its members' names joined with `-` (`nx-xx`).
fn joined_names(args: &[Arg]) -> String {
    args.iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join("-")
}

/// Adds an optional group `[...]` to `seq`: a repetition of the previous argument
/// (`key [key ...]`) marks it multiple; one alternative of one argument becomes that
/// argument, optional; anything else becomes an optional `oneof` or `block`.
fn push_group(seq: &mut Vec<Arg>, mut inner: Vec<Vec<Arg>>) {
    if inner.len() == 1 && inner[0].last().is_some_and(|l| l.multiple) {
        // `a b [a b ...]`: the group repeats the arguments just before it.
        let mut items = inner.remove(0);
        for a in &mut items {
            a.multiple = false;
        }
        let k = items.len();
        let repeats = seq.len() >= k
            && seq[seq.len() - k..]
                .iter()
                .zip(&items)
                .all(|(a, b)| a.name == b.name);
        if repeats && k == 1 {
            if let Some(prev) = seq.last_mut() {
                prev.multiple = true;
            }
            return;
        }
        if repeats {
            seq.truncate(seq.len() - k);
            seq.push(Arg {
                name: "data".into(),
                kind: "block",
                token: None,
                optional: false,
                multiple: true,
                children: items,
            });
            return;
        }
        inner.push(items);
    }
    if inner.len() == 1 {
        let mut items = inner.remove(0);
        if items.len() == 1 {
            let mut a = items.remove(0);
            a.optional = true;
            seq.push(a);
            return;
        }
        let name = joined_names(&items);
        seq.push(Arg {
            name,
            kind: "block",
            token: None,
            optional: true,
            multiple: false,
            children: items,
        });
        return;
    }
    let children: Vec<Arg> = inner
        .into_iter()
        .map(|mut alt| {
            if alt.len() == 1 {
                alt.remove(0)
            } else {
                let name = joined_names(&alt);
                Arg {
                    name,
                    kind: "block",
                    token: None,
                    optional: false,
                    multiple: false,
                    children: alt,
                }
            }
        })
        .collect();
    let name = joined_names(&children);
    seq.push(Arg {
        name,
        kind: "oneof",
        token: None,
        optional: true,
        multiple: false,
        children,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_syntax_becomes_redis_argument_tree() {
        let args =
            parse_syntax("key value [NX | XX] [GET] [EX seconds | PX milliseconds | KEEPTTL]");
        let names: Vec<&str> = args.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "key",
                "value",
                "nx-xx",
                "get",
                "seconds-milliseconds-keepttl"
            ]
        );
        assert_eq!(args[0].kind, "key");
        assert_eq!(args[2].kind, "oneof");
        assert!(args[2].optional);
        assert_eq!(args[3].kind, "pure-token");
        let ex = &args[4].children[0];
        assert_eq!((ex.kind, ex.token.as_deref()), ("integer", Some("EX")));
    }

    #[test]
    fn repeated_arguments_are_marked_multiple() {
        let args = parse_syntax("key [key ...]");
        assert_eq!(args.len(), 1);
        assert!(args[0].multiple);
        let args = parse_syntax("key field value [field value ...]");
        assert_eq!(args.len(), 2);
        assert_eq!(args[1].kind, "block");
        assert!(args[1].multiple);
        assert_eq!(args[1].children.len(), 2);
    }

    #[test]
    fn every_documented_syntax_parses() {
        for c in COMMANDS {
            let _ = parse_syntax(c.syntax);
            for s in c.subcommands {
                let _ = parse_syntax(s.syntax);
            }
        }
    }
}
