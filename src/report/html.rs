//! `report.html`: the run as one self-contained page for a certification
//! file. No network and no external assets: inline CSS, inline SVG (the
//! message ladder drawn by hand, media charts by `plotters`' SVG backend),
//! and `<details>` for collapsing, so it needs no script.
//!
//! The page is written from the JSON form of [`RunResult`], not from the
//! typed structs, so `camcert report html` can render a `results.json` of an
//! older or newer camcert, and fields added to the schema show up (as
//! key/value lines) without this file knowing them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use super::RunResult;

/// Render `result` and write it to `path`.
pub fn write(result: &RunResult, path: &Path) -> Result<()> {
    let v = serde_json::to_value(result)?;
    write_value(&v, path, "")
}

/// Read a `results.json` and write its page to `out` (default: `report.html`
/// beside it). Returns the path written.
pub fn write_from_json(results: &Path, out: Option<&Path>) -> Result<PathBuf> {
    let v = read_results(results)?;
    let dir = results.parent().unwrap_or(Path::new("."));
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("report.html"));
    // Evidence paths in results.json are relative to its folder; when the page
    // goes elsewhere they point back there.
    let out_dir = out.parent().unwrap_or(Path::new("."));
    let same = canon(dir) == canon(out_dir);
    let base = if same {
        String::new()
    } else {
        format!("file://{}/", canon(dir).display())
    };
    write_value(&v, &out, &base)?;
    Ok(out)
}

/// Parse a `results.json` file into its JSON value; the error names the file.
pub fn read_results(path: &Path) -> Result<Value> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not a camcert results.json", path.display()))?;
    if !v.get("cases").is_some_and(Value::is_array) {
        anyhow::bail!(
            "{}: no `cases` list; not a camcert results.json",
            path.display()
        );
    }
    Ok(v)
}

fn canon(p: &Path) -> PathBuf {
    let p = if p.as_os_str().is_empty() {
        Path::new(".")
    } else {
        p
    };
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn write_value(v: &Value, path: &Path, evidence_base: &str) -> Result<()> {
    let html = render(v, evidence_base);
    let tmp = path.with_extension("html.tmp");
    std::fs::write(&tmp, html).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// HTML-escape text (also safe inside attribute values and SVG).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {
                let _ = write!(o, "\\x{:02x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

fn st<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A value as one line of text: strings as they are, the rest as JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// The anchor of a case run.
pub fn case_anchor(id: &str, transport: &str) -> String {
    let mut a = String::from("case-");
    for c in format!("{id}-{transport}").chars() {
        a.push(if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        });
    }
    a
}

/// The CSS class of a verdict word.
fn vclass(status: &str) -> &'static str {
    match status {
        "passed" | "pass" => "v-pass",
        "failed" | "fail" => "v-fail",
        "error" => "v-error",
        _ => "v-none",
    }
}

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",sans-serif;margin:0;color:#1d2228;background:#f5f6f8;font-size:14px;line-height:1.4}
main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d5d9df;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;background:#fff;margin:6px 0 10px}
th,td{border:1px solid #d5d9df;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eceff3;font-weight:600}
code,pre,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#fff;border:1px solid #d5d9df;padding:8px;overflow-x:auto;white-space:pre-wrap;word-break:break-all;margin:4px 0}
.verdict{display:inline-block;padding:4px 14px;border-radius:4px;font-weight:700;font-size:16px;color:#fff}
.verdict.v-pass{background:#1e8a3c;color:#fff}.verdict.v-fail{background:#c62828;color:#fff}.verdict.v-none{background:#6b7280;color:#fff}
.banner{background:#fff4e5;border:1px solid #f0a640;padding:8px 12px;margin:10px 0;border-radius:4px}
td.v-pass,span.v-pass{background:#dff3e4;color:#14602a}
td.v-fail,span.v-fail{background:#fbe0e0;color:#9b1c1c;font-weight:600}
td.v-error,span.v-error{background:#fde9d2;color:#8a4b00;font-weight:600}
td.v-none,span.v-none{background:#eef0f3;color:#6b7280}
span.v-pass,span.v-fail,span.v-error,span.v-none{padding:1px 6px;border-radius:3px}
td.cell a{display:inline-block;margin-right:6px;font-size:11.5px}td.cell .vw{font-weight:600}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0}
dl.kv dt{color:#555}dl.kv dd{margin:0}
section.case{background:#fff;border:1px solid #d5d9df;border-radius:6px;margin:10px 0;padding:0 12px}
section.case>details>summary{cursor:pointer;padding:8px 0;font-weight:600}
section.case.failed{border-left:5px solid #c62828}section.case.error{border-left:5px solid #e08a00}
section.case.passed{border-left:5px solid #1e8a3c}
.exp{color:#14602a}.rec{color:#9b1c1c}
svg.ladder{background:#fff;border:1px solid #d5d9df;max-width:100%;height:auto}
svg.ladder text{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:11px}
.charts{display:flex;flex-wrap:wrap;gap:8px}.charts svg{border:1px solid #d5d9df;background:#fff}
.muted{color:#6b7280}
"#;

/// The page for one run, from its JSON form. `evidence_base` prefixes the
/// relative evidence paths (pcaps).
pub fn render(v: &Value, evidence_base: &str) -> String {
    let cases = arr(v, "cases");
    let mut h = String::with_capacity(64 * 1024 + cases.len() * 16 * 1024);
    let tool = if st(v, "tool").is_empty() {
        "camcert"
    } else {
        st(v, "tool")
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} conformance report: {}</title><style>{CSS}</style></head><body><main>\n",
        esc(tool),
        esc(st(v, "target"))
    );
    summary(&mut h, v);
    matrix(&mut h, cases);
    case_index(&mut h, cases);
    h.push_str("<h2 id=\"cases\">Cases</h2>\n");
    for (i, c) in cases.iter().enumerate() {
        case_section(&mut h, c, i, evidence_base);
    }
    let _ = write!(
        h,
        "<p class=\"muted\">Written by {} {} from results.json.</p>\n</main></body></html>\n",
        esc(tool),
        esc(st(v, "version"))
    );
    h
}

/// Counts of cases by status, in a stable order (known statuses first).
fn status_counts(cases: &[Value]) -> Vec<(String, usize)> {
    let mut m: BTreeMap<String, usize> = BTreeMap::new();
    for c in cases {
        *m.entry(st(c, "status").to_string()).or_default() += 1;
    }
    let order = ["passed", "failed", "error", "skipped"];
    let mut out: Vec<(String, usize)> = order
        .iter()
        .map(|s| (s.to_string(), m.remove(*s).unwrap_or(0)))
        .filter(|(s, n)| *n > 0 || matches!(s.as_str(), "passed" | "failed" | "error"))
        .collect();
    out.extend(m);
    out
}

/// The identity the DUT gave in a DeviceInfo answer, if the log has one.
fn dut_identity(cases: &[Value]) -> Option<Vec<(&'static str, String)>> {
    for c in cases {
        for m in arr(c, "messages") {
            if st(m, "direction") != "received" {
                continue;
            }
            let t = st(m, "text");
            if !(t.contains("<Response") && t.contains("DeviceInfo</CmdType>")) {
                continue;
            }
            let mut out = Vec::new();
            for tag in [
                "DeviceID",
                "DeviceName",
                "Manufacturer",
                "Model",
                "Firmware",
            ] {
                if let Some(val) = xml_text(t, tag) {
                    out.push((tag, val));
                }
            }
            if out
                .iter()
                .any(|(k, _)| *k == "Manufacturer" || *k == "Model")
            {
                return Some(out);
            }
        }
    }
    None
}

/// The text of the first `<tag>…</tag>` in `s`.
fn xml_text(s: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let a = s.find(&open)? + open.len();
    let b = s[a..].find(&close)? + a;
    Some(s[a..b].trim().to_string())
}

fn run_duration(v: &Value) -> Option<String> {
    let a = chrono::DateTime::parse_from_rfc3339(st(v, "started_at")).ok()?;
    let b = chrono::DateTime::parse_from_rfc3339(st(v, "finished_at")).ok()?;
    let ms = (b - a).num_milliseconds().max(0);
    Some(format!("{}.{:03} s", ms / 1000, ms % 1000))
}

fn sha256_file(p: &Path) -> Option<String> {
    use sha2::Digest;
    let b = std::fs::read(p).ok()?;
    Some(hex::encode(sha2::Sha256::digest(&b)))
}

fn summary(h: &mut String, v: &Value) {
    let cases = arr(v, "cases");
    let mandatory_failed = cases
        .iter()
        .filter(|c| st(c, "level") == "mandatory" && matches!(st(c, "status"), "failed" | "error"))
        .count();
    let interrupted = v
        .get("interrupted")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let not_passed = cases
        .iter()
        .filter(|c| matches!(st(c, "status"), "failed" | "error"))
        .count();
    let (word, cls) = if interrupted {
        ("INTERRUPTED", "v-none")
    } else if mandatory_failed > 0 {
        ("FAILED", "v-fail")
    } else if cases.is_empty() {
        ("NO CASES", "v-none")
    } else if not_passed > 0 {
        ("PASSED (optional or conditional cases failed)", "v-pass")
    } else {
        ("PASSED", "v-pass")
    };
    let _ = write!(
        h,
        "<h1>Conformance report: {}</h1>\n<p><span class=\"verdict {cls}\" id=\"verdict\">{}</span></p>\n",
        esc(st(v, "target")),
        esc(word)
    );
    if interrupted {
        h.push_str(
            "<div class=\"banner\" id=\"interrupted\"><b>Interrupted.</b> The run was stopped before \
             every case ran; this report holds the cases that finished.</div>\n",
        );
    }
    h.push_str("<h2 id=\"summary\">Summary</h2>\n<dl class=\"kv\">\n");
    let mut kv = |k: &str, val: String| {
        let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", esc(k), val);
    };
    kv("Target (DUT)", esc(st(v, "target")));
    if let Some(id) = dut_identity(cases) {
        let s: Vec<String> = id
            .iter()
            .map(|(k, val)| format!("{k}: <b>{}</b>", esc(val)))
            .collect();
        kv("DUT identity (DeviceInfo)", s.join(" · "));
    }
    kv(
        "Tool",
        format!("{} {}", esc(st(v, "tool")), esc(st(v, "version"))),
    );
    kv("Started", esc(st(v, "started_at")));
    kv(
        "Finished",
        if st(v, "finished_at").is_empty() {
            "<i>not finished</i>".into()
        } else {
            esc(st(v, "finished_at"))
        },
    );
    if let Some(d) = run_duration(v) {
        kv("Duration", d);
    }
    kv("Interrupted", if interrupted { "yes" } else { "no" }.into());
    let counts: Vec<String> = status_counts(cases)
        .into_iter()
        .map(|(s, n)| format!("<span class=\"{}\">{} {}</span>", vclass(&s), n, esc(&s)))
        .collect();
    kv(
        "Case runs",
        format!(
            "{} <span id=\"counts\">{}</span> · {} mandatory not passed",
            cases.len(),
            counts.join(" "),
            mandatory_failed
        ),
    );
    // Extra top-level fields a newer schema may carry.
    let known = [
        "tool",
        "version",
        "started_at",
        "finished_at",
        "target",
        "interrupted",
        "cases",
        "summary",
        "suite_files",
    ];
    if let Some(o) = v.as_object() {
        for (k, val) in o {
            if !known.contains(&k.as_str()) && !val.is_null() {
                kv(k, format!("<code>{}</code>", esc(&text_of(val))));
            }
        }
    }
    h.push_str("</dl>\n");

    // By level.
    let levels = ["mandatory", "conditional", "optional"];
    let statuses: Vec<String> = status_counts(cases).into_iter().map(|(s, _)| s).collect();
    h.push_str("<h3>By level</h3>\n<table id=\"by-level\"><tr><th>level</th>");
    for s in &statuses {
        let _ = write!(h, "<th>{}</th>", esc(s));
    }
    h.push_str("<th>total</th></tr>\n");
    let mut all_levels: Vec<String> = levels.iter().map(|s| s.to_string()).collect();
    for c in cases {
        let l = st(c, "level").to_string();
        if !all_levels.contains(&l) {
            all_levels.push(l);
        }
    }
    for l in &all_levels {
        let of_level: Vec<&Value> = cases.iter().filter(|c| st(c, "level") == l).collect();
        if of_level.is_empty() {
            continue;
        }
        let _ = write!(h, "<tr><td>{}</td>", esc(l));
        for s in &statuses {
            let n = of_level.iter().filter(|c| st(c, "status") == s).count();
            let cls = if n > 0 { vclass(s) } else { "" };
            let _ = write!(h, "<td class=\"{cls}\">{n}</td>");
        }
        let _ = writeln!(h, "<td>{}</td></tr>", of_level.len());
    }
    h.push_str("</table>\n");

    // Suite files and their hashes.
    h.push_str(
        "<h3>Suite files</h3>\n<table id=\"suite-files\"><tr><th>file</th><th>SHA-256</th></tr>\n",
    );
    let recorded = arr(v, "suite_files");
    if !recorded.is_empty() {
        for f in recorded {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td class=\"mono\">{}</td></tr>",
                esc(st(f, "path")),
                esc(st(f, "sha256"))
            );
        }
    } else {
        let files: BTreeSet<&str> = cases.iter().map(|c| st(c, "suite_file")).collect();
        for f in files {
            let hash = sha256_file(Path::new(f))
                .map(|x| format!("{x} <span class=\"muted\">(of the file as it is now)</span>"))
                .unwrap_or_else(|| "<span class=\"muted\">file not found</span>".into());
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td class=\"mono\">{hash}</td></tr>",
                esc(f)
            );
        }
    }
    h.push_str("</table>\n");
}

/// Requirement ID × transport → pass / fail / not run.
fn matrix(h: &mut String, cases: &[Value]) {
    let transports: BTreeSet<&str> = cases.iter().map(|c| st(c, "transport")).collect();
    // id -> (clause, level, text, transport -> cases)
    struct Row<'a> {
        clause: &'a str,
        level: &'a str,
        text: &'a str,
        cells: BTreeMap<&'a str, Vec<&'a Value>>,
    }
    let mut rows: BTreeMap<&str, Row> = BTreeMap::new();
    for c in cases {
        for r in arr(c, "requirements") {
            let row = rows.entry(st(r, "id")).or_insert_with(|| Row {
                clause: st(r, "clause"),
                level: st(r, "level"),
                text: st(r, "text"),
                cells: BTreeMap::new(),
            });
            row.cells.entry(st(c, "transport")).or_default().push(c);
        }
    }
    h.push_str("<h2 id=\"matrix\">Requirement matrix</h2>\n");
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">No case names a requirement.</p>\n");
        return;
    }
    h.push_str(
        "<table id=\"requirement-matrix\"><tr><th>requirement</th><th>level</th><th>clause</th>",
    );
    for t in &transports {
        let _ = write!(h, "<th>{}</th>", esc(t));
    }
    h.push_str("</tr>\n");
    for (id, row) in &rows {
        let _ = write!(
            h,
            "<tr data-requirement=\"{0}\"><td title=\"{1}\"><b>{0}</b><br><span class=\"muted\">{1}</span></td><td>{2}</td><td>{3}</td>",
            esc(id),
            esc(row.text),
            esc(row.level),
            esc(row.clause)
        );
        for t in &transports {
            let cs = row.cells.get(t).map(Vec::as_slice).unwrap_or(&[]);
            let ran: Vec<&&Value> = cs
                .iter()
                .filter(|c| matches!(st(c, "status"), "passed" | "failed" | "error"))
                .collect();
            let verdict = if ran.is_empty() {
                "not run"
            } else if ran.iter().any(|c| st(c, "status") == "failed") {
                "fail"
            } else if ran.iter().any(|c| st(c, "status") == "error") {
                "error"
            } else {
                "pass"
            };
            let _ = write!(
                h,
                "<td class=\"cell {}\" data-transport=\"{}\" data-verdict=\"{verdict}\"><div class=\"vw\">{verdict}</div>",
                vclass(verdict),
                esc(t)
            );
            for c in cs {
                let status = st(c, "status");
                // Only a case that did not pass says so; the cell's colour
                // carries the rest.
                let note = if status == "passed" {
                    String::new()
                } else {
                    format!(" ({})", esc(status))
                };
                let _ = write!(
                    h,
                    "<a href=\"#{}\" title=\"{}: {}\">{}{note}</a>",
                    case_anchor(st(c, "id"), st(c, "transport")),
                    esc(status),
                    esc(st(c, "title")),
                    esc(st(c, "id")),
                );
            }
            h.push_str("</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn case_index(h: &mut String, cases: &[Value]) {
    h.push_str("<h2 id=\"case-list\">Case runs</h2>\n<table id=\"case-index\"><tr><th>case</th><th>transport</th><th>status</th><th>level</th><th>title</th><th>ms</th></tr>\n");
    for c in cases {
        let s = st(c, "status");
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            case_anchor(st(c, "id"), st(c, "transport")),
            esc(st(c, "id")),
            esc(st(c, "transport")),
            vclass(s),
            esc(s),
            esc(st(c, "level")),
            esc(st(c, "title")),
            c.get("duration_ms").map(text_of).unwrap_or_default()
        );
    }
    h.push_str("</table>\n");
}

const CASE_KNOWN: &[&str] = &[
    "suite",
    "suite_file",
    "id",
    "title",
    "transport",
    "level",
    "tags",
    "clause",
    "requirements",
    "status",
    "duration_ms",
    "failures",
    "findings",
    "messages",
    "pcap",
    "media",
];

fn case_section(h: &mut String, c: &Value, n: usize, evidence_base: &str) {
    let id = st(c, "id");
    let tr = st(c, "transport");
    let status = st(c, "status");
    let open = if matches!(status, "failed" | "error") {
        " open"
    } else {
        ""
    };
    let _ = writeln!(
        h,
        "<section class=\"case {}\" id=\"{}\" data-case=\"{}\" data-transport=\"{}\" data-status=\"{}\"><details{open}><summary><span class=\"{}\">{}</span> {} [{}] {}</summary>",
        esc(status),
        case_anchor(id, tr),
        esc(id),
        esc(tr),
        esc(status),
        vclass(status),
        esc(status),
        esc(id),
        esc(tr),
        esc(st(c, "title"))
    );
    h.push_str("<dl class=\"kv\">");
    let mut kv = |k: &str, v: String| {
        let _ = write!(h, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    };
    kv(
        "suite",
        format!(
            "{} (<code>{}</code>)",
            esc(st(c, "suite")),
            esc(st(c, "suite_file"))
        ),
    );
    kv("level", esc(st(c, "level")));
    kv("clause", esc(st(c, "clause")));
    let reqs: Vec<String> = arr(c, "requirements")
        .iter()
        .map(|r| {
            format!(
                "<b>{}</b> ({}, {}): {}",
                esc(st(r, "id")),
                esc(st(r, "level")),
                esc(st(r, "clause")),
                esc(st(r, "text"))
            )
        })
        .collect();
    if !reqs.is_empty() {
        kv("requirements", reqs.join("<br>"));
    }
    let tags: Vec<String> = arr(c, "tags").iter().map(text_of).collect();
    if !tags.is_empty() {
        kv("tags", esc(&tags.join(", ")));
    }
    kv(
        "duration",
        format!(
            "{} ms",
            c.get("duration_ms").map(text_of).unwrap_or_default()
        ),
    );
    match c.get("pcap").and_then(Value::as_str) {
        Some(p) => kv(
            "evidence",
            format!(
                "<a class=\"pcap\" href=\"{}{}\">{}</a>",
                esc(evidence_base),
                esc(p),
                esc(p)
            ),
        ),
        None => kv("evidence", "<span class=\"muted\">no capture</span>".into()),
    }
    // Fields this page does not know yet (timing variables, ...).
    if let Some(o) = c.as_object() {
        for (k, v) in o {
            if CASE_KNOWN.contains(&k.as_str()) || v.is_null() {
                continue;
            }
            kv(k, generic(v));
        }
    }
    h.push_str("</dl>\n");

    let failures = arr(c, "failures");
    if !failures.is_empty() {
        h.push_str("<h3>Failures</h3>\n");
        for f in failures {
            failure(h, f);
        }
    }
    let findings = arr(c, "findings");
    if !findings.is_empty() {
        findings_table(h, findings);
    }
    let media = arr(c, "media");
    if !media.is_empty() {
        media_section(h, media, n);
    }
    let msgs = arr(c, "messages");
    if !msgs.is_empty() {
        let _ = writeln!(h, "<h3>Message ladder ({} messages)</h3>", msgs.len());
        h.push_str(&ladder(msgs, n));
        h.push_str("<details><summary>Messages in full</summary>\n");
        for (i, m) in msgs.iter().enumerate() {
            let _ = writeln!(
                h,
                "<div id=\"m{n}-{i}\"><b>#{} +{} ms {} {}</b> {}<pre>{}</pre></div>",
                i + 1,
                m.get("at_ms").map(text_of).unwrap_or_default(),
                esc(st(m, "direction")),
                esc(st(m, "peer")),
                esc(st(m, "summary")),
                esc(st(m, "text"))
            );
        }
        h.push_str("</details>\n");
    }
    h.push_str("</details></section>\n");
}

/// A value of a field this page does not know: text, a list, or JSON.
fn generic(v: &Value) -> String {
    match v {
        Value::String(s) => esc(s),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            esc(&a.iter().map(text_of).collect::<Vec<_>>().join(", "))
        }
        Value::Object(o) if o.values().all(|x| !x.is_object() && !x.is_array()) => {
            let parts: Vec<String> = o
                .iter()
                .map(|(k, x)| format!("{}: {}", esc(k), esc(&text_of(x))))
                .collect();
            parts.join(" · ")
        }
        other => format!(
            "<pre>{}</pre>",
            esc(&serde_json::to_string_pretty(other).unwrap_or_default())
        ),
    }
}

fn failure(h: &mut String, f: &Value) {
    let _ = write!(
        h,
        "<table class=\"failure\"><tr><th colspan=\"2\">step {} <code>{}</code> — {}</th></tr>\n<tr><td>message</td><td>{}</td></tr>\n",
        f.get("step").map(text_of).unwrap_or_default(),
        esc(st(f, "location")),
        esc(st(f, "check")),
        esc(st(f, "message"))
    );
    if let Some(e) = f.get("expected").filter(|x| !x.is_null()) {
        let _ = writeln!(
            h,
            "<tr><td>expected</td><td class=\"exp mono\">{}</td></tr>",
            esc(&text_of(e))
        );
    }
    if let Some(r) = f.get("received").filter(|x| !x.is_null()) {
        let _ = writeln!(
            h,
            "<tr><td>received</td><td class=\"rec mono\">{}</td></tr>",
            esc(&text_of(r))
        );
    }
    if let Some(b) = f.get("bytes").filter(|x| !x.is_null()) {
        let _ = writeln!(
            h,
            "<tr><td>bytes</td><td><pre>{}</pre></td></tr>",
            esc(&text_of(b))
        );
    }
    let known = [
        "step", "location", "check", "message", "expected", "received", "bytes",
    ];
    if let Some(o) = f.as_object() {
        for (k, v) in o {
            if known.contains(&k.as_str()) || v.is_null() {
                continue;
            }
            let _ = writeln!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), generic(v));
        }
    }
    h.push_str("</table>\n");
}

fn findings_table(h: &mut String, findings: &[Value]) {
    let known = ["code", "severity", "clause", "message"];
    let mut extra: Vec<String> = Vec::new();
    for f in findings {
        if let Some(o) = f.as_object() {
            for k in o.keys() {
                if !known.contains(&k.as_str()) && !extra.contains(k) {
                    extra.push(k.clone());
                }
            }
        }
    }
    h.push_str("<h3>Findings</h3>\n<table class=\"findings\"><tr><th>code</th><th>severity</th><th>clause</th><th>message</th>");
    for k in &extra {
        let _ = write!(h, "<th>{}</th>", esc(k));
    }
    h.push_str("</tr>\n");
    for f in findings {
        let sev = st(f, "severity");
        let cls = match sev {
            "error" => "v-fail",
            "warning" => "v-error",
            _ => "",
        };
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td class=\"{cls}\">{}</td><td>{}</td><td>{}</td>",
            esc(st(f, "code")),
            if sev.is_empty() {
                "<span class=\"muted\">—</span>".to_string()
            } else {
                esc(sev)
            },
            esc(st(f, "clause")),
            esc(st(f, "message"))
        );
        for k in &extra {
            let _ = write!(h, "<td>{}</td>", f.get(k).map(generic).unwrap_or_default());
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

/// The SIP method a response answers, from its CSeq header.
fn cseq_method(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim_end)
        .find_map(|l| {
            let (name, v) = l.split_once(':')?;
            let n = name.trim();
            (n.eq_ignore_ascii_case("CSeq")).then_some(v)
        })
        .and_then(|v| v.split_whitespace().nth(1))
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The message exchange as a sequence diagram: camcert's lifeline on the
/// left, one per peer address on the right, an arrow per message labelled
/// with its summary line and its time since the case started.
pub fn ladder(msgs: &[Value], n: usize) -> String {
    let mut peers: Vec<&str> = Vec::new();
    for m in msgs {
        let p = st(m, "peer");
        if !peers.contains(&p) {
            peers.push(p);
        }
    }
    let width = 860.0_f64;
    let left = 190.0_f64;
    // Lifeline boxes are 160 wide, centred on the line.
    let right = width - 90.0;
    let top = 56.0_f64;
    let row = 30.0_f64;
    let height = top + row * msgs.len() as f64 + 24.0;
    let px: Vec<f64> = (0..peers.len())
        .map(|i| {
            if peers.len() == 1 {
                right
            } else {
                left + (right - left) * (i + 1) as f64 / peers.len() as f64
            }
        })
        .collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg class=\"ladder\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"SIP message ladder\">\
         <defs><marker id=\"ah{n}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/></marker></defs>"
    );
    let life = |s: &mut String, x: f64, name: &str, cls: &str| {
        let _ = writeln!(
            s,
            "<g class=\"lifeline {cls}\"><rect x=\"{}\" y=\"8\" width=\"160\" height=\"24\" rx=\"4\" fill=\"#eceff3\" stroke=\"#8a93a0\"/>\
             <text x=\"{x}\" y=\"24\" text-anchor=\"middle\">{}</text>\
             <line x1=\"{x}\" y1=\"32\" x2=\"{x}\" y2=\"{}\" stroke=\"#8a93a0\" stroke-dasharray=\"4 3\"/></g>",
            x - 80.0,
            esc(&truncate(name, 22)),
            height - 8.0
        );
    };
    life(&mut s, left, "camcert", "camcert");
    for (i, p) in peers.iter().enumerate() {
        life(&mut s, px[i], &format!("DUT {p}"), "dut");
    }
    for (i, m) in msgs.iter().enumerate() {
        let y = top + row * i as f64 + row * 0.6;
        let pi = peers.iter().position(|p| *p == st(m, "peer")).unwrap_or(0);
        let sent = st(m, "direction") == "sent";
        let (x1, x2) = if sent { (left, px[pi]) } else { (px[pi], left) };
        let mut label = st(m, "summary").to_string();
        let is_response =
            label.starts_with("SIP/") || label.chars().next().is_some_and(|c| c.is_ascii_digit());
        if is_response {
            if let Some(meth) = cseq_method(st(m, "text")) {
                label = format!("{label} ({meth})");
            }
        }
        let at = m.get("at_ms").map(text_of).unwrap_or_default();
        let color = if sent { "#1f4f99" } else { "#7a2e8c" };
        let mid = (x1 + x2) / 2.0;
        let span = (x1 - x2).abs();
        let max_chars = ((span / 6.6) as usize).max(12);
        let _ = writeln!(
            s,
            "<a href=\"#m{n}-{i}\"><g class=\"msg {}\" data-index=\"{}\"><title>#{} +{at} ms {} {}</title>\
             <text x=\"8\" y=\"{:.1}\" fill=\"#555\">#{} +{at} ms</text>\
             <line class=\"arrow\" x1=\"{x1:.1}\" y1=\"{y:.1}\" x2=\"{x2:.1}\" y2=\"{y:.1}\" stroke=\"{color}\" stroke-width=\"1.5\" marker-end=\"url(#ah{n})\"/>\
             <text x=\"{mid:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{color}\">{}</text></g></a>",
            if sent { "sent" } else { "received" },
            i + 1,
            i + 1,
            esc(st(m, "direction")),
            esc(&label),
            y + 4.0,
            i + 1,
            y - 5.0,
            esc(&truncate(&label, max_chars))
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The media figures of a case: a table of every figure, and a bar chart
/// per figure across the case's streams.
fn media_section(h: &mut String, media: &[Value], n: usize) {
    h.push_str("<h3>Media</h3>\n");
    let mut keys: Vec<String> = Vec::new();
    for m in media {
        if let Some(o) = m.as_object() {
            for k in o.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
    }
    // One column per stream, one row per figure: streams are few, figures many.
    h.push_str("<table class=\"media\"><tr><th>figure</th>");
    for m in media {
        let _ = write!(
            h,
            "<th>session {} {} {}</th>",
            esc(&m.get("session").map(text_of).unwrap_or_default()),
            esc(st(m, "kind")),
            esc(st(m, "direction"))
        );
    }
    h.push_str("</tr>\n");
    for k in keys
        .iter()
        .filter(|k| !matches!(k.as_str(), "session" | "kind" | "direction"))
    {
        let _ = write!(h, "<tr><td>{}</td>", esc(k));
        for m in media {
            let t = match m.get(k) {
                Some(Value::Number(x)) if x.is_f64() => {
                    format!("{:.3}", x.as_f64().unwrap_or(0.0))
                }
                Some(other) => text_of(other),
                None => String::new(),
            };
            let _ = write!(h, "<td>{}</td>", esc(&t));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    let labels: Vec<String> = media
        .iter()
        .map(|m| {
            let d = match st(m, "direction") {
                "received" => "rx",
                "sent" => "tx",
                o => o,
            };
            format!(
                "s{} {} {d}",
                m.get("session").map(text_of).unwrap_or_default(),
                st(m, "kind")
            )
        })
        .collect();
    let figures: [(&str, &str, f64); 5] = [
        ("bitrate_kbps", "bit rate (kbit/s)", 1.0),
        ("frame_rate", "frame rate (fps)", 1.0),
        ("jitter_ms", "jitter (ms)", 1.0),
        ("loss_ratio", "loss (%)", 100.0),
        ("first_key_frame_ms", "first key frame (ms)", 1.0),
    ];
    let mut charts = String::new();
    for (key, title, scale) in figures {
        let vals: Vec<Option<f64>> = media
            .iter()
            .map(|m| m.get(key).and_then(Value::as_f64).map(|x| x * scale))
            .collect();
        if vals.iter().all(Option::is_none) {
            continue;
        }
        match bar_chart(title, &labels, &vals) {
            Ok(svg) => charts.push_str(&svg),
            Err(e) => {
                let _ = write!(
                    charts,
                    "<p class=\"muted\">{}: chart not drawn ({})</p>",
                    esc(title),
                    esc(&e)
                );
            }
        }
    }
    if !charts.is_empty() {
        let _ = writeln!(
            h,
            "<div class=\"charts\" id=\"media-charts-{n}\">{charts}</div>"
        );
    }
}

/// One bar per stream (missing figures are left out), as an SVG string.
pub fn bar_chart(title: &str, labels: &[String], vals: &[Option<f64>]) -> Result<String, String> {
    use plotters::prelude::*;
    let max = vals.iter().flatten().fold(0.0_f64, |a, &b| a.max(b));
    let top = if max > 0.0 { max * 1.15 } else { 1.0 };
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (300, 200)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let n = labels.len().max(1) as u32;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 14))
            .margin(6)
            .x_label_area_size(24)
            .y_label_area_size(44)
            .build_cartesian_2d((0u32..n - 1).into_segmented(), 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(labels.len())
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    labels.get(*i as usize).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(|e| e.to_string())?;
        let data: Vec<(u32, f64)> = vals
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i as u32, v)))
            .collect();
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(RGBColor(0x1f, 0x4f, 0x99).filled())
                    .margin(12)
                    .data(data.iter().copied()),
            )
            .map_err(|e| e.to_string())?;
        // The value above each bar, so a zero still reads as a figure.
        chart
            .draw_series(data.iter().map(|&(i, v)| {
                Text::new(
                    format_figure(v),
                    (SegmentValue::CenterOf(i), v + top * 0.01),
                    ("sans-serif", 11).into_font().color(&BLACK).pos(
                        plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Center,
                            plotters::style::text_anchor::VPos::Bottom,
                        ),
                    ),
                )
            }))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

fn format_figure(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e9 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_markup_and_control_bytes() {
        assert_eq!(
            esc("<a href=\"x\">&'\u{1}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;\\x01"
        );
    }

    #[test]
    fn matrix_marks_failed_passed_and_not_run() {
        let v = json!({"tool":"camcert","version":"0","target":"t","interrupted":false,"summary":{},
        "cases":[
          {"id":"A-1","transport":"udp","status":"failed","level":"mandatory","title":"x",
           "requirements":[{"id":"R-1","clause":"§1","level":"mandatory","text":"t"}],
           "failures":[{"step":2,"location":"f:1:1","check":"c","message":"m","expected":"E1","received":"R1","bytes":null,"candidates":["why"]}],
           "findings":[{"code":"F1","clause":"§2","message":"fm","severity":"warning"}],
           "messages":[],"pcap":"pcap/A-1-udp.pcap"},
          {"id":"A-2","transport":"tcp","status":"passed","level":"optional","title":"y",
           "requirements":[{"id":"R-2","clause":"§2","level":"optional","text":"t"}],
           "failures":[],"findings":[],"messages":[],"pcap":null}
        ]});
        let h = render(&v, "");
        assert!(h.contains("data-requirement=\"R-1\""));
        assert!(h.contains("data-transport=\"udp\" data-verdict=\"fail\""));
        assert!(h.contains("data-transport=\"tcp\" data-verdict=\"not run\""));
        assert!(h.contains("data-transport=\"tcp\" data-verdict=\"pass\""));
        assert!(h.contains("E1") && h.contains("R1"));
        // A field the page does not know still shows.
        assert!(h.contains("candidates") && h.contains("why"));
        assert!(h.contains("href=\"#case-A-1-udp\""));
        assert!(h.contains(">FAILED<") || h.contains("FAILED"));
    }

    #[test]
    fn ladder_draws_an_arrow_per_message_with_the_response_method() {
        let msgs = vec![
            json!({"at_ms":0,"direction":"received","peer":"1.2.3.4:5060","summary":"REGISTER sip:x","text":"REGISTER sip:x SIP/2.0\r\nCSeq: 1 REGISTER\r\n\r\n"}),
            json!({"at_ms":3,"direction":"sent","peer":"1.2.3.4:5060","summary":"200 OK","text":"SIP/2.0 200 OK\r\nCSeq: 1 REGISTER\r\n\r\n"}),
        ];
        let s = ladder(&msgs, 0);
        assert_eq!(s.matches("class=\"arrow\"").count(), 2);
        assert!(s.contains("200 OK (REGISTER)"));
        assert!(s.contains("+3 ms"));
    }

    #[test]
    fn media_streams_get_a_table_and_a_chart_per_figure() {
        let v = json!({"cases":[{"id":"M-1","transport":"udp","status":"passed","level":"mandatory",
            "requirements":[],"failures":[],"findings":[],"messages":[],
            "media":[
              {"session":1,"kind":"video","direction":"received","packets":32,"frame_rate":25.0,
               "bitrate_kbps":125.5,"jitter_ms":0.25,"loss_ratio":0.0,"first_key_frame_ms":0},
              {"session":1,"kind":"audio","direction":"sent","packets":50,"frame_rate":null,
               "bitrate_kbps":64.0,"jitter_ms":null,"loss_ratio":null,"first_key_frame_ms":null}]}]});
        let h = render(&v, "");
        let charts = &h[h.find("id=\"media-charts-0\"").expect("charts")..];
        // bit rate, frame rate, jitter, loss, first key frame
        assert_eq!(charts.matches("<svg").count(), 5);
        assert!(h.contains("<th>session 1 audio sent</th>"));
        assert!(charts.contains("125.5") && charts.contains("s1 audio tx"));
    }

    #[test]
    fn bar_chart_is_an_svg() {
        let s = bar_chart("bit rate", &["s1 video rx".into()], &[Some(120.0)]).unwrap();
        assert!(s.starts_with("<svg"), "{s}");
        assert!(s.contains("s1 video rx"));
    }
}
