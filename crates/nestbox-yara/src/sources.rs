//! Where rules come from, and compiling them into one rule set that survives bad files.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use yara_x::{Compiler, SourceCode};

use crate::starter::STARTER_RULES;

/// Rule files larger than this are refused: real rule files are kilobytes, and reading a
/// mistaken multi-gigabyte file into memory on every reload would hurt the server.
const MAX_RULE_FILE: u64 = 16 * 1024 * 1024;
/// At most this many rule files are read from the directories (the rest are reported).
const MAX_RULE_FILES: usize = 20_000;
/// Directory recursion depth limit (symlinked directories are not followed at all).
const MAX_DEPTH: usize = 16;

/// Where the rules come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSources {
    /// Include the starter set embedded in the binary.
    pub starter: bool,
    /// Directories searched recursively for `*.yar` and `*.yara` files. A directory that
    /// does not exist contributes nothing (it may be created later; reloads pick it up).
    pub dirs: Vec<PathBuf>,
}

/// A rule file that could not be used, with the place of the (first) problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileError {
    /// The file (a path, or `starter/<name>` for the embedded set).
    pub file: String,
    /// 1-based line of the problem; 0 when it is about the whole file (unreadable, too big).
    pub line: usize,
    /// What is wrong, as the compiler says it.
    pub message: String,
}

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The outcome of [`compile`]: the rules that loaded, and what did not.
pub struct CompiledRules {
    /// The compiled rule set (possibly empty, never absent).
    pub rules: yara_x::Rules,
    /// The files whose rules are in the set, in load order.
    pub files: Vec<String>,
    /// Number of rules in the set.
    pub rule_count: usize,
    /// Files left out, with why.
    pub errors: Vec<RuleFileError>,
}

impl fmt::Debug for CompiledRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledRules")
            .field("files", &self.files)
            .field("rule_count", &self.rule_count)
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl RuleSources {
    /// Every rule file in the directories, sorted by path (the load order, so that a
    /// reload gives the same namespaces), with the problems met while looking.
    pub fn files(&self) -> (Vec<PathBuf>, Vec<RuleFileError>) {
        let mut files = Vec::new();
        let mut errors = Vec::new();
        for dir in &self.dirs {
            walk(dir, 0, &mut files, &mut errors);
        }
        files.sort();
        files.dedup();
        if files.len() > MAX_RULE_FILES {
            errors.push(RuleFileError {
                file: files[MAX_RULE_FILES].display().to_string(),
                line: 0,
                message: format!(
                    "more than {MAX_RULE_FILES} rule files; this one and the rest are ignored"
                ),
            });
            files.truncate(MAX_RULE_FILES);
        }
        (files, errors)
    }

    /// What a reload compares: every rule file with its size and modification time, plus
    /// the directories' own times (a deleted file changes its directory's mtime).
    pub fn fingerprint(&self) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
        let (files, _) = self.files();
        let mut out: Vec<_> = self
            .dirs
            .iter()
            .chain(files.iter())
            .map(|p| match std::fs::metadata(p) {
                Ok(m) => (p.clone(), m.len(), m.modified().ok()),
                Err(_) => (p.clone(), 0, None),
            })
            .collect();
        out.sort();
        out
    }
}

fn is_rule_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yar" | "yara")
    )
}

fn walk(dir: &Path, depth: usize, files: &mut Vec<PathBuf>, errors: &mut Vec<RuleFileError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        // A configured directory that does not exist yet is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            errors.push(RuleFileError {
                file: dir.display().to_string(),
                line: 0,
                message: format!("cannot read the directory: {e}"),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth + 1 < MAX_DEPTH {
                walk(&path, depth + 1, files, errors);
            }
        } else if is_rule_file(&path) && files.len() <= MAX_RULE_FILES {
            // Plain files and symlinks to files; a symlink to a directory is not followed
            // (loops), and `file_type` does not follow links, so it lands here only as a
            // file if it ends in .yar.
            files.push(path);
        }
    }
}

/// Where in `src` a compile error is: the 1-based line of its first label.
fn error_line(err: &yara_x::errors::CompileError, src: &[u8]) -> usize {
    err.labels()
        .next()
        .map(|l| {
            let end = l.span().range().start.min(src.len());
            src[..end].iter().filter(|&&b| b == b'\n').count() + 1
        })
        .unwrap_or(0)
}

fn error_message(err: &yara_x::errors::CompileError) -> String {
    let mut msg = err.title().to_owned();
    if let Some(label) = err.labels().next().filter(|l| !l.text().is_empty()) {
        msg.push_str(": ");
        msg.push_str(label.text());
    }
    msg
}

fn new_compiler<'a>() -> Compiler<'a> {
    let mut c = Compiler::new();
    // Community rules are written for libyara, whose regular-expression syntax is looser
    // (e.g. an unescaped `{` as a literal); accept what libyara accepts.
    c.relaxed_re_syntax(true);
    c
}

/// Compiles the starter set and every rule file of `sources` into one rule set.
///
/// Each file goes into its own namespace (its path) so rule names never clash across
/// files. A file is first compiled alone: if that fails it contributes nothing at all (not
/// the half of its rules before the error) and is listed in [`CompiledRules::errors`].
pub fn compile(sources: &RuleSources) -> CompiledRules {
    let mut compiler = new_compiler();
    let mut files = Vec::new();
    let mut errors = Vec::new();

    if sources.starter {
        for (name, src) in STARTER_RULES {
            let origin = format!("starter/{name}");
            add_checked(
                &mut compiler,
                &origin,
                src.as_bytes(),
                &mut files,
                &mut errors,
            );
        }
    }

    let (paths, walk_errors) = sources.files();
    errors.extend(walk_errors);
    for path in paths {
        let origin = path.display().to_string();
        let text = match read_rule_file(&path) {
            Ok(t) => t,
            Err(message) => {
                errors.push(RuleFileError {
                    file: origin,
                    line: 0,
                    message,
                });
                continue;
            }
        };
        add_checked(&mut compiler, &origin, &text, &mut files, &mut errors);
    }

    let rules = compiler.build();
    let rule_count = rules.iter().len();
    CompiledRules {
        rules,
        files,
        rule_count,
        errors,
    }
}

fn read_rule_file(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() > MAX_RULE_FILE {
        return Err(format!(
            "{} bytes is more than the {MAX_RULE_FILE}-byte limit for a rule file",
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read: {e}"))
}

/// Adds one file to `compiler` if it compiles on its own.
fn add_checked(
    compiler: &mut Compiler<'_>,
    origin: &str,
    text: &[u8],
    files: &mut Vec<String>,
    errors: &mut Vec<RuleFileError>,
) {
    let mut probe = new_compiler();
    probe.new_namespace(origin);
    if let Err(e) = probe.add_source(SourceCode::from(text).with_origin(origin)) {
        errors.push(RuleFileError {
            file: origin.to_owned(),
            line: error_line(&e, text),
            message: error_message(&e),
        });
        return;
    }
    compiler.new_namespace(origin);
    match compiler.add_source(SourceCode::from(text).with_origin(origin)) {
        Ok(_) => files.push(origin.to_owned()),
        // Alone it compiled; together it did not (an `include` that changed in between):
        // still a problem of this file.
        Err(e) => errors.push(RuleFileError {
            file: origin.to_owned(),
            line: error_line(&e, text),
            message: error_message(&e),
        }),
    }
}
