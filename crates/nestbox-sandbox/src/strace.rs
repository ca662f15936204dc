//! A parser for `strace -ttt -ff` output: one file per process, one event per line.
//!
//! The grammar is strace's default output: `TIME NAME(ARGS) = RET [ERRNO (text)]`,
//! `TIME +++ exited with N +++`, `TIME +++ killed by SIG +++` and `TIME --- SIG {...} ---`.
//! Arguments are split at top-level commas, respecting quoted strings, brackets and
//! braces. The parser is total: a line it does not understand is skipped, never an error,
//! because the sample controls much of what strace prints (paths, buffers).

/// One system call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Epoch seconds.
    pub time: f64,
    /// Syscall name.
    pub api: String,
    /// Arguments as strace printed them.
    pub args: Vec<String>,
    /// Return value text (`0`, `-1`, `?`, `0x7f…`).
    pub ret: String,
    /// The errno name for failed calls (`ENOENT`).
    pub errno: Option<String>,
}

impl Call {
    /// Whether the call succeeded.
    pub fn ok(&self) -> bool {
        self.errno.is_none() && !self.ret.starts_with('-') && self.ret != "?"
    }

    /// The return value as an integer, when it is one.
    pub fn ret_int(&self) -> Option<i64> {
        let r = self.ret.split_whitespace().next()?;
        if let Some(h) = r.strip_prefix("0x") {
            return i64::from_str_radix(h, 16).ok();
        }
        r.parse().ok()
    }
}

/// One line of a per-process trace.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A system call.
    Call(Call),
    /// The process ended (`exit code` or `killed by`).
    Exit {
        /// Epoch seconds.
        time: f64,
        /// `exited with N` or `killed by SIGKILL`.
        how: String,
    },
}

/// Parses one line; `None` for signals, blank or unknown lines.
pub fn parse_line(line: &str) -> Option<Event> {
    let (ts, rest) = line.split_once(' ')?;
    let time: f64 = ts.parse().ok()?;
    let rest = rest.trim_end();
    if let Some(inner) = rest.strip_prefix("+++ ") {
        let how = inner.trim_end_matches("+++").trim().to_owned();
        return Some(Event::Exit { time, how });
    }
    if rest.starts_with("---") {
        return None;
    }
    let open = rest.find('(')?;
    let api = &rest[..open];
    if api.is_empty() || !api.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let (args, after) = split_args(&rest[open + 1..]);
    let after = after.trim();
    let (ret, errno) = match after.strip_prefix('=') {
        Some(r) => {
            let r = r.trim();
            let mut parts = r.splitn(3, ' ');
            let mut value = parts.next().unwrap_or("?").to_owned();
            // `--pidns-translation`: `= 2 /* 17467 in strace's PID NS */`. The trace files
            // are named by host pids, so the host pid is the useful return value.
            if let Some(host) = r
                .split("/* ")
                .nth(1)
                .and_then(|x| x.split(" in strace's PID NS").next())
                .filter(|x| x.parse::<i64>().is_ok())
            {
                value = host.to_owned();
            }
            let errno = parts
                .next()
                .filter(|e| {
                    e.starts_with('E')
                        && e.bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                })
                .map(str::to_owned);
            (value, errno)
        }
        None => ("?".to_owned(), None),
    };
    Some(Event::Call(Call {
        time,
        api: api.to_owned(),
        args,
        ret,
        errno,
    }))
}

/// Splits `a, [b, c], "d,e")  = 0` into the top-level arguments and what follows the
/// closing parenthesis.
fn split_args(s: &str) -> (Vec<String>, &str) {
    let mut args = Vec::new();
    let mut depth = 0i32;
    let mut in_str = false;
    let mut esc = false;
    let mut start = 0usize;
    for (i, c) in s.char_indices() {
        if in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '[' | '{' | '(' => depth += 1,
            ']' | '}' => depth -= 1,
            ')' if depth == 0 => {
                push_arg(&mut args, &s[start..i]);
                return (args, &s[i + 1..]);
            }
            ')' => depth -= 1,
            ',' if depth == 0 => {
                push_arg(&mut args, &s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    push_arg(&mut args, &s[start..]);
    (args, "")
}

fn push_arg(args: &mut Vec<String>, a: &str) {
    let a = a.trim();
    let a = a.strip_suffix("<unfinished ...>").unwrap_or(a).trim();
    if !a.is_empty() {
        args.push(a.to_owned());
    }
}

/// Decodes a C string literal as strace prints it (`"a\nb\x01"`, maybe followed by
/// `...` when truncated) into bytes. `None` if `s` is not a string literal.
pub fn unquote(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    let s = s.strip_suffix("...").unwrap_or(s);
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let b = inner.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        match b[i] {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'x' => {
                let h = inner
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = h {
                    out.push(v);
                    i += 2;
                }
            }
            b'0'..=b'7' => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 3 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                    v = v * 8 + u32::from(b[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
                continue;
            }
            other => out.push(other),
        }
        i += 1;
    }
    Some(out)
}

/// A string argument as text (lossy), or the raw argument when it is not a literal.
pub fn text(arg: &str) -> String {
    match unquote(arg) {
        Some(b) => String::from_utf8_lossy(&b).into_owned(),
        None => arg.to_owned(),
    }
}

/// The list `["a", "b"]` as texts (execve argv).
pub fn list(arg: &str) -> Vec<String> {
    let a = arg.trim();
    let Some(inner) = a.strip_prefix('[').and_then(|x| x.strip_suffix(']')) else {
        return Vec::new();
    };
    let (items, _) = split_args(&format!("{inner})"));
    items.iter().map(|i| text(i)).collect()
}

/// `{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("1.2.3.4")}` →
/// `("1.2.3.4", 80)`; IPv6 likewise. `None` for other families.
pub fn sockaddr(arg: &str) -> Option<(String, u16)> {
    let port = arg
        .split("sin6_port=htons(")
        .nth(1)
        .or_else(|| arg.split("sin_port=htons(").nth(1))?
        .split(')')
        .next()?
        .parse()
        .ok()?;
    let ip = if let Some(x) = arg.split("inet_addr(\"").nth(1) {
        x.split('"').next()?.to_owned()
    } else if let Some(x) = arg.split("inet_pton(AF_INET6, \"").nth(1) {
        x.split('"').next()?.to_owned()
    } else {
        return None;
    };
    Some((ip, port))
}

/// The queried name of a DNS query message, if `msg` is one.
pub fn dns_query_name(msg: &[u8]) -> Option<String> {
    if msg.len() < 17 || msg[2] & 0x80 != 0 {
        return None;
    }
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    if qd == 0 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let n = usize::from(*msg.get(i)?);
        if n == 0 {
            break;
        }
        if n > 63 {
            return None;
        }
        let l = msg.get(i + 1..i + 1 + n)?;
        if !l.iter().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        labels.push(String::from_utf8_lossy(l).into_owned());
        i += 1 + n;
    }
    (!labels.is_empty()).then(|| labels.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_calls_exits_and_errors() {
        let l = r#"1795409885.889894 execve("/tmp/s.sh", ["/tmp/s.sh", "a,b"], 0x7ffd40567ad0 /* 39 vars */) = 0"#;
        let Some(Event::Call(c)) = parse_line(l) else {
            panic!()
        };
        assert_eq!(c.api, "execve");
        assert_eq!(c.args.len(), 3);
        assert_eq!(list(&c.args[1]), vec!["/tmp/s.sh", "a,b"]);
        assert!(c.ok());
        let l = r#"1.5 openat(AT_FDCWD, "/etc/shadow", O_RDONLY) = -1 EACCES (Permission denied)"#;
        let Some(Event::Call(c)) = parse_line(l) else {
            panic!()
        };
        assert_eq!(c.errno.as_deref(), Some("EACCES"));
        assert!(!c.ok());
        assert_eq!(text(&c.args[1]), "/etc/shadow");
        assert_eq!(
            parse_line("2.0 +++ killed by SIGKILL +++"),
            Some(Event::Exit {
                time: 2.0,
                how: "killed by SIGKILL".into()
            })
        );
        assert_eq!(parse_line("2.0 --- SIGCHLD {si_signo=SIGCHLD} ---"), None);
        assert_eq!(parse_line("garbage"), None);
        let l = "3.0 nanosleep({tv_sec=100, tv_nsec=0},  <unfinished ...>) = ?";
        let Some(Event::Call(c)) = parse_line(l) else {
            panic!()
        };
        assert_eq!(c.args.len(), 1);
        let l = "4.0 vfork() = 4 /* 17469 in strace's PID NS */";
        let Some(Event::Call(c)) = parse_line(l) else {
            panic!()
        };
        assert_eq!(c.ret_int(), Some(17469));
    }

    #[test]
    fn decodes_addresses_and_dns() {
        let a = r#"{sa_family=AF_INET, sin_port=htons(4444), sin_addr=inet_addr("127.0.0.1")}"#;
        assert_eq!(sockaddr(a), Some(("127.0.0.1".into(), 4444)));
        let a = r#"{sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}"#;
        assert_eq!(sockaddr(a), Some(("::1".into(), 53)));
        let q = r#""\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04evil\x07example\x03com\x00\x00\x01\x00\x01""#;
        let b = unquote(q).unwrap();
        assert_eq!(dns_query_name(&b).as_deref(), Some("evil.example.com"));
        assert_eq!(unquote(r#""a\nb\0""#).unwrap(), b"a\nb\0");
    }
}
