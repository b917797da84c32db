//! Loading suite files: YAML → [`super::model`] → checked [`Suite`]s.
//! Every error names the file, line and column, and what was expected
//! there; the CLI turns it into exit code 2.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::fields;
use super::model::*;
use super::vars::MAX_EXPANDED_BYTES;
use super::{Case, Catalog, Loc, Requirement, Step, Suite};
use crate::proto::Transport;

/// A problem with a suite file: the user's to fix.
#[derive(Debug, Clone)]
pub struct SuiteError {
    pub file: PathBuf,
    pub line: u64,
    pub col: u64,
    pub message: String,
}

impl fmt::Display for SuiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.col,
                self.message
            )
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}

impl std::error::Error for SuiteError {}

fn err_at(file: &Path, loc: &serde_saphyr::Location, message: impl Into<String>) -> SuiteError {
    SuiteError {
        file: file.to_path_buf(),
        line: loc.line(),
        col: loc.column(),
        message: message.into(),
    }
}

fn yaml_error(file: &Path, e: serde_saphyr::Error) -> SuiteError {
    let (line, col) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    // The library's message carries a source snippet after the first line;
    // we print our own location, so keep its first line only.
    let full = e.to_string();
    let first = full
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid YAML")
        .trim();
    let msg = strip_location_prefix(first).to_string();
    SuiteError {
        file: file.to_path_buf(),
        line,
        col,
        message: msg,
    }
}

/// `error: line 3 column 5: unknown field` -> `unknown field`.
fn strip_location_prefix(s: &str) -> &str {
    let t = s.strip_prefix("error: ").unwrap_or(s);
    if let Some(rest) = t.strip_prefix("line ") {
        if let Some((_, after)) = rest.split_once(": ") {
            return after;
        }
    }
    t
}

/// Suite files under `paths` (files as given; folders walked, sorted,
/// `requirements.yaml` excluded).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SuiteError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out).map_err(|e| SuiteError {
                file: p.clone(),
                line: 0,
                col: 0,
                message: e.to_string(),
            })?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(SuiteError {
                file: p.clone(),
                line: 0,
                col: 0,
                message: "no such file or folder".into(),
            });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
            && !p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == "requirements.yaml" || n.starts_with("requirements-"))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// Load the catalog nearest to `suite_file`: every `requirements*.yaml` in
/// its folder (or, if none, the nearest parent that has one), merged.
fn find_catalog(
    suite_file: &Path,
    cache: &mut HashMap<PathBuf, Arc<Catalog>>,
) -> Result<Arc<Catalog>, SuiteError> {
    let mut dir = suite_file.parent().map(Path::to_path_buf);
    while let Some(d) = dir {
        let main = d.join("requirements.yaml");
        if main.is_file() {
            if let Some(c) = cache.get(&main) {
                return Ok(c.clone());
            }
            let mut c = load_catalog(&main)?;
            let mut extra: Vec<PathBuf> = std::fs::read_dir(&d)
                .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                .unwrap_or_default();
            extra.retain(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                n.starts_with("requirements-") && n.ends_with(".yaml")
            });
            extra.sort();
            for f in extra {
                let more = load_catalog(&f)?;
                for (id, r) in more.requirements {
                    if c.requirements.contains_key(&id) {
                        return Err(SuiteError {
                            file: f.clone(),
                            line: 0,
                            col: 0,
                            message: format!(
                                "requirement {id} is already defined in {}",
                                main.display()
                            ),
                        });
                    }
                    c.requirements.insert(id, r);
                }
            }
            let c = Arc::new(c);
            cache.insert(main, c.clone());
            return Ok(c);
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    Err(SuiteError {
        file: suite_file.to_path_buf(),
        line: 0,
        col: 0,
        message: "no requirements.yaml in this folder or any parent: every case must cite a catalogued requirement".into(),
    })
}

pub fn load_catalog(file: &Path) -> Result<Catalog, SuiteError> {
    let text = read(file)?;
    let input: CatalogInput = serde_saphyr::from_str(&text).map_err(|e| yaml_error(file, e))?;
    let mut reqs = BTreeMap::new();
    for r in input.requirements {
        if reqs.contains_key(&r.value.id) {
            return Err(err_at(
                file,
                &r.referenced,
                format!("requirement {} is defined twice", r.value.id),
            ));
        }
        reqs.insert(r.value.id.clone(), r.value);
    }
    Ok(Catalog {
        file: file.to_path_buf(),
        spec: input.spec,
        requirements: reqs,
    })
}

fn read(file: &Path) -> Result<String, SuiteError> {
    std::fs::read_to_string(file).map_err(|e| SuiteError {
        file: file.to_path_buf(),
        line: 0,
        col: 0,
        message: format!("cannot read: {e}"),
    })
}

pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Suite>, SuiteError> {
    let mut cache = HashMap::new();
    let mut seen_ids: HashMap<String, PathBuf> = HashMap::new();
    let mut suites = Vec::new();
    for f in discover(paths)? {
        let s = load_suite(&f, &mut cache)?;
        for c in &s.cases {
            if let Some(prev) = seen_ids.insert(c.id.clone(), f.clone()) {
                return Err(SuiteError {
                    file: f.clone(),
                    line: c.loc.line,
                    col: c.loc.col,
                    message: format!("case ID {} is already used in {}", c.id, prev.display()),
                });
            }
        }
        suites.push(s);
    }
    Ok(suites)
}

fn load_suite(
    file: &Path,
    cache: &mut HashMap<PathBuf, Arc<Catalog>>,
) -> Result<Suite, SuiteError> {
    let text = read(file)?;
    parse_suite(file, &text, || find_catalog(file, cache))
}

/// Read one suite from its text. `file` names it in errors and in each
/// step's location; `catalog` is asked for the requirement catalog once the
/// text has been read as YAML.
pub fn parse_suite(
    file: &Path,
    text: &str,
    catalog: impl FnOnce() -> Result<Arc<Catalog>, SuiteError>,
) -> Result<Suite, SuiteError> {
    let input: SuiteInput = serde_saphyr::from_str(text).map_err(|e| yaml_error(file, e))?;
    check_random_lengths(text).map_err(|(line, col, message)| SuiteError {
        file: file.to_path_buf(),
        line,
        col,
        message,
    })?;
    let catalog = catalog()?;
    for b in &input.background {
        for (path, m) in &b.when {
            fields::check_path(path)
                .and_then(|_| check_matcher(path, m))
                .map_err(|e| SuiteError {
                    file: file.to_path_buf(),
                    line: 0,
                    col: 0,
                    message: format!("background rule for {}: {e}", b.request),
                })?;
        }
    }
    check_transports(&input.transports).map_err(|m| {
        let (line, col) = top_level_key(text, "transports").unwrap_or((0, 0));
        SuiteError {
            file: file.to_path_buf(),
            line,
            col,
            message: m,
        }
    })?;
    let fname: Arc<str> = file.display().to_string().into();
    let mut cases = Vec::new();
    let mut ids = HashSet::new();
    for Spanned {
        value: c,
        referenced,
        ..
    } in input.cases
    {
        let at = |msg: String| err_at(file, &referenced, msg);
        if !ids.insert(c.id.clone()) {
            return Err(at(format!("case ID {} appears twice in this file", c.id)));
        }
        if c.requirements.is_empty() {
            return Err(at(format!(
                "case {}: `requirements` is empty; cite at least one requirement ID",
                c.id
            )));
        }
        let mut reqs = Vec::new();
        for r in &c.requirements {
            match catalog.requirements.get(r) {
                Some(req) => reqs.push(Requirement::from(req)),
                None => {
                    return Err(at(format!(
                        "case {}: requirement {r:?} is not in {}",
                        c.id,
                        catalog.file.display()
                    )))
                }
            }
        }
        if let Some(t) = &c.transports {
            check_transports(t).map_err(|m| at(format!("case {}: {m}", c.id)))?;
        }
        let level = c.level.unwrap_or_else(|| {
            reqs.iter()
                .map(|r| r.level)
                .max()
                .unwrap_or(Level::Mandatory)
        });
        let needs = c.needs.or(input.needs).unwrap_or(match input.role {
            Role::Platform | Role::Device => Needs::Registered,
            Role::UpperPlatform => Needs::None,
        });
        let clause = c.clause.clone().unwrap_or_else(|| reqs[0].clause.clone());
        let mut steps = Vec::new();
        for s in c.steps {
            let loc = Loc {
                file: fname.clone(),
                line: s.referenced.line(),
                col: s.referenced.column(),
            };
            let checked = match input.protocol {
                Protocol::Hedgw => super::hedgw::check_step(input.role, &s.value),
                Protocol::Openapi => super::openapi::check_step(input.role, &s.value),
                Protocol::Gb28181 => check_step(&s.value),
            };
            checked.map_err(|m| err_at(file, &s.referenced, format!("case {}: {m}", c.id)))?;
            steps.push(Step {
                input: s.value,
                loc,
            });
        }
        if steps.is_empty() {
            return Err(at(format!("case {}: no steps", c.id)));
        }
        cases.push(Case {
            id: c.id,
            title: c.title,
            requirements: reqs,
            level,
            needs,
            tags: c.tags,
            clause,
            vars: c.vars,
            transports: c.transports.unwrap_or_else(|| input.transports.clone()),
            peer: c.peer,
            steps,
            loc: Loc {
                file: fname.clone(),
                line: referenced.line(),
                col: referenced.column(),
            },
        });
    }
    Ok(Suite {
        name: input.suite,
        file: file.to_path_buf(),
        protocol: input.protocol,
        role: input.role,
        transports: input.transports,
        vars: input.vars,
        secrets: input.secrets,
        timeout: input.timeout.map(|d| d.0),
        background: input.background,
        allow_findings: input.allow_findings,
        peer: input.peer,
        cases,
        catalog,
    })
}

/// Every literal `${random:KIND:N}` in the file asks for at most
/// [`MAX_EXPANDED_BYTES`] characters (the run would refuse it anyway; here
/// the error has its line and column).
fn check_random_lengths(text: &str) -> Result<(), (u64, u64, String)> {
    const OPEN: &str = "${random:";
    for (i, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(at) = line[from..].find(OPEN).map(|p| p + from) {
            from = at + OPEN.len();
            let spec = &line[from..];
            let Some(end) = spec.find('}') else { break };
            let Some((_, n)) = spec[..end].split_once(':') else {
                continue;
            };
            let too_long = match n.parse::<u128>() {
                Ok(n) => n > MAX_EXPANDED_BYTES as u128,
                Err(_) => n.len() > 30 && n.bytes().all(|b| b.is_ascii_digit()),
            };
            if too_long {
                return Err((
                    i as u64 + 1,
                    line[..at].chars().count() as u64 + 1,
                    format!(
                        "${{random:{}}}: length {n} is over the limit of {MAX_EXPANDED_BYTES} characters",
                        &spec[..end]
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `transports:` names each transport once, and at least one.
fn check_transports(t: &[Transport]) -> Result<(), String> {
    if t.is_empty() {
        return Err("`transports` is empty: name at least one (udp, tcp)".into());
    }
    for (i, x) in t.iter().enumerate() {
        if t[..i].contains(x) {
            return Err(format!(
                "`transports` lists {x} twice; each transport runs once per case"
            ));
        }
    }
    Ok(())
}

/// Line and column of a top-level `key:` in a YAML text.
fn top_level_key(text: &str, key: &str) -> Option<(u64, u64)> {
    text.lines().enumerate().find_map(|(i, l)| {
        l.strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with(':'))
            .then_some((i as u64 + 1, 1))
    })
}

/// A `min`/`max` pair that no value can satisfy.
fn check_range<T: PartialOrd + fmt::Display>(
    what: &str,
    min: Option<T>,
    max: Option<T>,
) -> Result<(), String> {
    match (min, max) {
        (Some(lo), Some(hi)) if lo > hi => Err(format!(
            "{what}: min {lo} is greater than max {hi}, so nothing can match"
        )),
        _ => Ok(()),
    }
}

fn check_matcher(path: &str, m: &MatcherInput) -> Result<(), String> {
    check_range(&format!("match {path:?}"), m.min, m.max)?;
    if let Some(r) = &m.regex {
        regex::Regex::new(r).map_err(|e| format!("match {path:?}: bad regex: {e}"))?;
    }
    if let Some(other) = &m.equals_field {
        fields::check_path(other).map_err(|e| format!("match {path:?}: equals_field: {e}"))?;
    }
    Ok(())
}

/// Fields a `stream` step can check.
const STREAM_FIELDS: &[&str] = &[
    "frames",
    "packets",
    "video_frames",
    "key_frames",
    "ssrc",
    "lost_packets",
    "loss_ratio",
    "jitter_ms",
    "frame_rate",
    "bitrate_kbps",
    "first_key_frame_ms",
    "psm_count",
    "video_stream_type",
    "clock_hz",
    "findings",
    "packets_after_bye",
    "sent.frames",
    "sent.packets",
    "sent.key_frames",
    "sent.damaged",
    "audio.packets",
    "audio.ssrc",
    "audio.payload_type",
    "audio.lost_packets",
    "audio.timestamp_step",
    "audio.clock_hz",
    "audio.findings",
    "audio.packets_after_bye",
    "audio_sent.packets",
    "audio_sent.samples",
];

/// Shape checks serde cannot express.
fn check_step(s: &StepInput) -> Result<(), String> {
    if let StepInput::Invite(i) = s {
        // Only literal times can be compared here; variables wait for the run.
        let secs = |v: &Option<String>| v.as_deref().and_then(|v| v.trim().parse::<u64>().ok());
        if let (Some(a), Some(b)) = (secs(&i.start), secs(&i.end)) {
            if a > b {
                return Err(format!(
                    "`invite`: start {a} is after end {b}, an empty time range"
                ));
            }
        }
    }
    match s {
        StepInput::Send(x) => {
            if x.request.is_none() && x.raw.is_none() && x.raw_base64.is_none() {
                return Err(
                    "`send` needs `request: METHOD`, `raw: ...` or `raw_base64: ...`".into(),
                );
            }
        }
        StepInput::Reply(x) => {
            if !(100..=699).contains(&x.status) {
                return Err(format!(
                    "`reply.status` {} is not a SIP status code (100-699)",
                    x.status
                ));
            }
        }
        StepInput::Expect(x) => {
            match (&x.request, x.response) {
                (Some(_), Some(_)) => {
                    return Err("`expect` takes `request` or `response`, not both".into())
                }
                (None, None) if x.when.is_empty() => {
                    return Err(
                        "`expect` needs `request: METHOD`, `response: STATUS` or `when` conditions"
                            .into(),
                    )
                }
                _ => {}
            }
            for (path, m) in x.matches.iter().chain(&x.when) {
                fields::check_path(path).map_err(|e| format!("match {path:?}: {e}"))?;
                check_matcher(path, m)?;
            }
            if let Some(a) = &x.after {
                check_range(
                    "`after`",
                    a.min.as_ref().and_then(|d| d.fixed()).map(|d| DurText(d.0)),
                    a.max.as_ref().and_then(|d| d.fixed()).map(|d| DurText(d.0)),
                )?;
                if a.tolerance.is_some() && a.around.is_none() {
                    return Err("`after`: `tolerance` needs `around`".into());
                }
            }
            for (var, path) in &x.capture {
                fields::check_path(path).map_err(|e| format!("capture {var:?}: {e}"))?;
            }
            if let Some(g) = &x.golden {
                if x.absent {
                    return Err(
                        "`golden` compares the message taken; an `absent` step takes none".into(),
                    );
                }
                if g.file.trim().is_empty() {
                    return Err("`golden.file` is empty".into());
                }
                for path in &g.redact {
                    crate::capture::golden::check_redact_path(path)
                        .map_err(|e| format!("golden redact {path:?}: {e}"))?;
                }
            }
        }
        StepInput::Collect(c) => {
            for (path, m) in &c.matches {
                let root = path.split(['.', '[']).next().unwrap_or("");
                if !["items", "sum_num", "messages", "item"].contains(&root) {
                    return Err(format!("collect match {path:?}: expected items, sum_num, messages, item[N].FIELD or item[*].FIELD"));
                }
                if m.equals_field.is_some() {
                    return Err(format!(
                        "collect match {path:?}: equals_field compares fields of one message"
                    ));
                }
                check_matcher(path, m)?;
            }
        }
        StepInput::Answer(AnswerInput {
            damage: Some(d), ..
        }) if !(0.0..=1.0).contains(&d.rate) => {
            return Err(format!("answer damage rate {}: expected 0 to 1", d.rate));
        }
        StepInput::Invite(InviteInput { matches, .. })
        | StepInput::Answer(AnswerInput { matches, .. }) => {
            for (path, m) in matches {
                fields::check_path(path).map_err(|e| format!("match {path:?}: {e}"))?;
                check_matcher(path, m)?;
            }
        }
        StepInput::Stream(st) => {
            for (path, m) in &st.matches {
                if !STREAM_FIELDS.contains(&path.as_str()) {
                    return Err(format!(
                        "stream match {path:?}: expected one of {}",
                        STREAM_FIELDS.join(", ")
                    ));
                }
                check_matcher(path, m)?;
            }
        }
        StepInput::Control(c) => {
            if !["PLAY", "PAUSE", "TEARDOWN"].contains(&c.method.to_ascii_uppercase().as_str()) {
                return Err(format!(
                    "control method {:?}: expected PLAY, PAUSE or TEARDOWN",
                    c.method
                ));
            }
        }
        StepInput::Media(m) => {
            if m.frames.is_none() && m.packets.is_none() && m.quiet.is_none() && !m.stop {
                return Err("`media` needs `frames`, `packets`, `quiet` or `stop`".into());
            }
        }
        StepInput::Fuzz(f) => {
            let count = match &f.count {
                NumberOrVar::Number(n) => Some(*n),
                NumberOrVar::Text(t) if t.contains("${") => None,
                NumberOrVar::Text(t) => Some(
                    t.trim()
                        .parse()
                        .map_err(|_| format!("fuzz count {t:?}: expected a number"))?,
                ),
            };
            if count.is_some_and(|c| c == 0 || c > 100_000) {
                return Err(format!(
                    "fuzz count {}: expected 1 to 100000",
                    count.unwrap_or(0)
                ));
            }
            if f.batch == Some(0) {
                return Err("fuzz batch: expected at least 1".into());
            }
            if f.rate.is_some_and(|r| !(r > 0.0 && r <= 10_000.0)) {
                return Err("fuzz rate: expected more than 0 and at most 10000 per second".into());
            }
            for g in &f.generators {
                if !["unusual", "mutate"].contains(&g.as_str()) {
                    return Err(format!("fuzz generator {g:?}: expected unusual or mutate"));
                }
            }
            for l in &f.layers {
                if crate::proto::gb28181::robust::Layer::parse(l).is_none() {
                    return Err(format!(
                        "fuzz layer {l:?}: expected sip, manscdp, ptz or sdp"
                    ));
                }
            }
        }
        StepInput::Connect(_) => {
            return Err("`connect` is a step of HEDGW suites (protocol: hedgw)".into())
        }
        StepInput::Replay(r) => {
            if r.file.trim().is_empty() {
                return Err("`replay.file` is empty".into());
            }
        }
        StepInput::Wait(_)
        | StepInput::Trigger(_)
        | StepInput::Hangup(_)
        | StepInput::SessionEvent(_) => {}
    }
    Ok(())
}

/// A duration compared and printed as the suite wrote it (seconds).
#[derive(PartialEq, PartialOrd)]
struct DurText(std::time::Duration);

impl fmt::Display for DurText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0.as_secs_f64())
    }
}
