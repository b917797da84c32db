//! Variables: `${name}` in any suite string.
//!
//! - `${name}`: suite, case, `--var` or captured variable;
//! - `${env:NAME}` / `${env:NAME:-default}`: the environment;
//! - `${random:hex:N}`, `${random:digits:N}`: N fresh random characters;
//! - `${now}`: the current time as GB/T 28181 writes it.

use std::collections::BTreeMap;

use rand::Rng;

#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: BTreeMap<String, String>,
    secret_names: Vec<String>,
}

/// Variables with these words in their names hold secrets.
const SECRET_WORDS: &[&str] = &["password", "passwd", "secret", "token", "key"];

impl Vars {
    pub fn new(secret_names: &[String]) -> Vars {
        Vars {
            values: BTreeMap::new(),
            secret_names: secret_names.to_vec(),
        }
    }

    pub fn set(&mut self, k: &str, v: impl Into<String>) {
        self.values.insert(k.to_string(), v.into());
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.values.get(k).map(String::as_str)
    }

    fn is_secret(&self, name: &str) -> bool {
        let l = name.to_ascii_lowercase();
        self.secret_names.iter().any(|s| s == name) || SECRET_WORDS.iter().any(|w| l.contains(w))
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
        self.expand_depth(s, 0)
    }

    fn expand_depth(&self, s: &str, depth: usize) -> Result<String, String> {
        if depth > 16 {
            return Err(format!("variables nest too deeply (a cycle?) in {s:?}"));
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = closing_brace(after).ok_or_else(|| format!("unterminated ${{ in {s:?}"))?;
            out.push_str(&self.lookup(&after[..end], depth)?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn lookup(&self, name: &str, depth: usize) -> Result<String, String> {
        if let Some(env) = name.strip_prefix("env:") {
            let (var, default) = match env.split_once(":-") {
                Some((v, d)) => (v, Some(d)),
                None => (env, None),
            };
            return match (std::env::var(var), default) {
                (Ok(v), _) => Ok(v),
                (Err(_), Some(d)) => self.expand_depth(d, depth + 1),
                (Err(_), None) => Err(format!("environment variable {var} is not set")),
            };
        }
        if let Some(spec) = name.strip_prefix("random:") {
            let (kind, n) = spec.split_once(':').unwrap_or((spec, "8"));
            let n: usize = n
                .parse()
                .map_err(|_| format!("${{{name}}}: length {n:?} is not a number"))?;
            let mut rng = rand::thread_rng();
            let alphabet: &[u8] = match kind {
                "hex" => b"0123456789abcdef",
                "digits" => b"0123456789",
                _ => {
                    return Err(format!(
                        "${{{name}}}: unknown random kind {kind:?} (hex or digits)"
                    ))
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
            .ok_or_else(|| format!("variable {name:?} is not defined (define it under `vars:` or pass --var {name}=VALUE)"))?;
        self.expand_depth(raw, depth + 1)
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
