//! Variables: `${name}` in any suite string.
//!
//! - `${name}`: suite, case, `--var` or captured variable;
//! - `${env:NAME}` / `${env:NAME:-default}`: the environment;
//! - `${random:hex:N}`, `${random:digits:N}`: N fresh random characters;
//! - `${now}`: the current time as GB/T 28181 writes it.
//!
//! Expansion is bounded ([`Limits`]): a suite cannot make camcert allocate
//! without end, however its variables refer to one another.

use std::collections::BTreeMap;

use rand::Rng;

/// Longest string one expansion may produce (and longest `${random:..:N}`).
pub const MAX_EXPANDED_BYTES: usize = 1 << 20;
/// How deep variables may refer to variables.
pub const MAX_DEPTH: usize = 16;
/// Most `${...}` substitutions one expansion may perform, however small
/// their values (a chain of variables each naming the previous one ten
/// times makes 10^depth lookups of the empty string).
pub const MAX_LOOKUPS: usize = 1_000_000;

/// The bounds on one expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_lookups: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: MAX_EXPANDED_BYTES,
            max_depth: MAX_DEPTH,
            max_lookups: MAX_LOOKUPS,
        }
    }
}

/// Why an expansion failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// A bound in [`Limits`] was passed; the message names the variable.
    Limit(String),
    /// An unknown name, an unset environment variable, bad syntax.
    Other(String),
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpandError::Limit(m) | ExpandError::Other(m) => f.write_str(m),
        }
    }
}

/// Work done so far by one top-level expansion.
struct Budget {
    lookups: usize,
    /// Bytes produced at every level, intermediate strings included.
    produced: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: BTreeMap<String, String>,
    secret_names: Vec<String>,
    limits: Limits,
}

/// Variables with these words in their names hold secrets.
const SECRET_WORDS: &[&str] = &["password", "passwd", "secret", "token", "key"];

/// Whether a variable or setting of this name holds a secret (its name
/// contains password, passwd, secret, token or key, in any case).
pub fn looks_secret(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| l.contains(w))
}

impl Vars {
    pub fn new(secret_names: &[String]) -> Vars {
        Vars {
            values: BTreeMap::new(),
            secret_names: secret_names.to_vec(),
            limits: Limits::default(),
        }
    }

    /// Replace the default bounds on expansion.
    pub fn with_limits(mut self, limits: Limits) -> Vars {
        self.limits = limits;
        self
    }

    /// Expand every defined variable once and report the first that passes
    /// a bound. Other errors (an unset environment variable, say) are left
    /// for the step that uses the variable. Call before a run, so a suite
    /// whose variables explode is a user error, not a stuck run.
    pub fn check_limits(&self) -> Result<(), String> {
        for (name, raw) in &self.values {
            let mut b = Budget {
                lookups: 0,
                produced: 0,
            };
            if let Err(ExpandError::Limit(m)) = self.expand_in(raw, 0, Some(name), &mut b) {
                return Err(format!("variable {name:?}: {m}"));
            }
        }
        Ok(())
    }

    pub fn set(&mut self, k: &str, v: impl Into<String>) {
        self.values.insert(k.to_string(), v.into());
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.values.get(k).map(String::as_str)
    }

    fn is_secret(&self, name: &str) -> bool {
        self.secret_names.iter().any(|s| s == name) || looks_secret(name)
    }

    /// Secret values, longest first, for masking.
    pub fn secrets(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .values
            .iter()
            .filter(|(k, _)| self.is_secret(k))
            .map(|(_, v)| self.expand(v).unwrap_or_else(|_| v.clone()))
            .filter(|v| !v.is_empty())
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        v
    }

    /// Substitute every `${...}`; an unknown name is an error naming it.
    pub fn expand(&self, s: &str) -> Result<String, String> {
        self.expand_checked(s).map_err(|e| e.to_string())
    }

    /// [`Vars::expand`], telling a passed bound from other errors.
    pub fn expand_checked(&self, s: &str) -> Result<String, ExpandError> {
        let mut b = Budget {
            lookups: 0,
            produced: 0,
        };
        self.expand_in(s, 0, None, &mut b)
    }

    /// Expand `s`, the value of variable `of` (None: suite text).
    fn expand_in(
        &self,
        s: &str,
        depth: usize,
        of: Option<&str>,
        b: &mut Budget,
    ) -> Result<String, ExpandError> {
        let lim = self.limits;
        let what = || match of {
            Some(n) => format!("variable {n:?}"),
            None => format!("{:?}", truncate(s)),
        };
        if depth > lim.max_depth {
            return Err(ExpandError::Limit(format!(
                "{} nests variables more than {} deep (a cycle?)",
                what(),
                lim.max_depth
            )));
        }
        let mut out = String::with_capacity(s.len().min(lim.max_bytes));
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = closing_brace(after).ok_or_else(|| {
                ExpandError::Other(format!("unterminated ${{ in {:?}", truncate(s)))
            })?;
            b.lookups += 1;
            if b.lookups > lim.max_lookups {
                return Err(ExpandError::Limit(format!(
                    "{} needs more than {} variable lookups to expand",
                    what(),
                    lim.max_lookups
                )));
            }
            let value = self.lookup(&after[..end], depth, b)?;
            b.produced = b.produced.saturating_add(value.len());
            if out.len() + value.len() > lim.max_bytes
                || b.produced > lim.max_bytes.saturating_mul(lim.max_depth.max(1))
            {
                return Err(ExpandError::Limit(format!(
                    "{} expands past {} bytes (at ${{{}}})",
                    what(),
                    lim.max_bytes,
                    truncate(&after[..end])
                )));
            }
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        if out.len() + rest.len() > lim.max_bytes {
            return Err(ExpandError::Limit(format!(
                "{} expands past {} bytes",
                what(),
                lim.max_bytes
            )));
        }
        out.push_str(rest);
        Ok(out)
    }

    fn lookup(&self, name: &str, depth: usize, b: &mut Budget) -> Result<String, ExpandError> {
        let other = ExpandError::Other;
        if let Some(env) = name.strip_prefix("env:") {
            let (var, default) = match env.split_once(":-") {
                Some((v, d)) => (v, Some(d)),
                None => (env, None),
            };
            return match (std::env::var(var), default) {
                (Ok(v), _) => Ok(v),
                (Err(_), Some(d)) => self.expand_in(d, depth + 1, None, b),
                (Err(_), None) => Err(other(format!("environment variable {var} is not set"))),
            };
        }
        if let Some(spec) = name.strip_prefix("random:") {
            let (kind, n) = spec.split_once(':').unwrap_or((spec, "8"));
            let n: usize = n.parse().map_err(|_| {
                other(format!(
                    "${{{}}}: length {:?} is not a number",
                    truncate(name),
                    truncate(n)
                ))
            })?;
            if n > self.limits.max_bytes {
                return Err(ExpandError::Limit(format!(
                    "${{{}}}: length {n} is over the limit of {} characters",
                    truncate(name),
                    self.limits.max_bytes
                )));
            }
            let mut rng = rand::thread_rng();
            let alphabet: &[u8] = match kind {
                "hex" => b"0123456789abcdef",
                "digits" => b"0123456789",
                _ => {
                    return Err(other(format!(
                        "${{{}}}: unknown random kind {kind:?} (hex or digits)",
                        truncate(name)
                    )))
                }
            };
            return Ok((0..n)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
                .collect());
        }
        if name == "now" {
            return Ok(crate::proto::gb28181::register::format_date(
                chrono::Local::now().naive_local(),
            ));
        }
        let raw = self
            .values
            .get(name)
            .ok_or_else(|| other(format!("variable {name:?} is not defined (define it under `vars:` or pass --var {name}=VALUE)")))?;
        self.expand_in(raw, depth + 1, Some(name), b)
    }
}

/// At most 60 characters of `s`, for messages.
fn truncate(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// Index of the `}` closing a `${`, skipping nested `${...}`.
fn closing_brace(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Replace every secret value in `text` with `******`.
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut t = text.to_string();
    for s in secrets {
        if s.len() >= 3 {
            t = t.replace(s.as_str(), "******");
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_masks() {
        let mut v = Vars::new(&[]);
        v.set("device_id", "34020000001320000001");
        v.set("password", "s3cret!");
        assert_eq!(
            v.expand("sip:${device_id}@x").unwrap(),
            "sip:34020000001320000001@x"
        );
        assert_eq!(
            v.expand("${env:CAMCERT_SURELY_UNSET:-${device_id}}")
                .unwrap(),
            "34020000001320000001"
        );
        assert!(v.expand("${nope}").unwrap_err().contains("nope"));
        assert_eq!(v.expand("${random:hex:6}").unwrap().len(), 6);
        v.set("alias", "${device_id}");
        assert_eq!(v.expand("${alias}").unwrap(), "34020000001320000001");
        v.set("loop", "${loop}");
        assert!(v.expand("${loop}").unwrap_err().contains("cycle"));
        assert_eq!(mask("pw=s3cret!", &v.secrets()), "pw=******");
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    /// `v0` of `len` bytes, then `v1..=v{n}` each naming the previous one ten times.
    fn chain(n: usize, len: usize) -> Vars {
        let mut v = Vars::new(&[]);
        v.set("v0", "a".repeat(len));
        for i in 1..=n {
            v.set(&format!("v{i}"), format!("${{v{}}}", i - 1).repeat(10));
        }
        v
    }

    #[test]
    fn a_huge_random_length_is_refused_without_allocating() {
        let v = Vars::new(&[]);
        let e = v.expand_checked("${random:hex:99999999999}").unwrap_err();
        assert!(
            matches!(&e, ExpandError::Limit(m) if m.contains("99999999999") && m.contains("1048576")),
            "{e}"
        );
        assert_eq!(
            v.expand(&format!("${{random:digits:{MAX_EXPANDED_BYTES}}}"))
                .unwrap()
                .len(),
            MAX_EXPANDED_BYTES
        );
    }

    #[test]
    fn ten_fold_chains_stop_at_the_size_bound_naming_the_variable() {
        let v = chain(10, 10);
        let t = std::time::Instant::now();
        let e = v.expand_checked("x${v10}").unwrap_err();
        // v5 is 1 MB (10^6 bytes) and fits; v6 is the first past 1 MiB.
        assert!(
            matches!(&e, ExpandError::Limit(m) if m.contains("\"v6\"") && m.contains("past 1048576 bytes")),
            "{e}"
        );
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(v.expand("${v5}").unwrap().len(), 1_000_000);
        let e = v.check_limits().unwrap_err();
        assert!(e.contains("v6"), "{e}");
    }

    #[test]
    fn empty_values_cannot_hide_an_exponential_number_of_lookups() {
        let v = chain(15, 0);
        let e = v.expand_checked("${v15}").unwrap_err();
        assert!(
            matches!(&e, ExpandError::Limit(m) if m.contains("lookups")),
            "{e}"
        );
        // Five levels (111,111 lookups) fit under the default.
        assert_eq!(v.expand("${v4}").unwrap(), "");
    }

    #[test]
    fn depth_and_limits_are_settable() {
        let mut v = Vars::new(&[]).with_limits(Limits {
            max_bytes: 8,
            max_depth: 2,
            max_lookups: 100,
        });
        v.set("a", "${b}");
        v.set("b", "${c}");
        v.set("c", "${d}");
        v.set("d", "x");
        v.set("long", "123456789");
        let e = v.expand_checked("${a}").unwrap_err();
        assert!(
            matches!(&e, ExpandError::Limit(m) if m.contains("\"c\"") && m.contains("2 deep")),
            "{e}"
        );
        assert_eq!(v.expand("${c}").unwrap(), "x");
        let e = v.expand_checked("${long}").unwrap_err();
        assert!(
            matches!(&e, ExpandError::Limit(m) if m.contains("\"long\"")),
            "{e}"
        );
        // An undefined name is not a limit: check_limits leaves it to the run.
        let mut w = Vars::new(&[]);
        w.set("uses_env", "${env:CAMCERT_SURELY_UNSET_TOO}");
        assert!(w.check_limits().is_ok());
        assert!(matches!(
            w.expand_checked("${uses_env}"),
            Err(ExpandError::Other(_))
        ));
    }
}
