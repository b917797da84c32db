//! Suites are data, executors are code. [`model`] is the YAML shape,
//! [`load`] checks it into [`Suite`]s, [`runner`] executes them against a
//! DUT or a built-in reference peer, [`fields`] and [`vars`] are the small
//! languages a suite uses to name message fields and values.

pub mod audit;
pub mod fields;
pub mod hedgw;
pub mod load;
pub mod model;
pub mod openapi;
mod outcome;
pub mod runner;
pub mod vars;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::proto::Transport;
use model::{Level, Protocol, RequirementInput, Role, StepInput};

/// Where something is in a suite file.
#[derive(Debug, Clone)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: u64,
    pub col: u64,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

#[derive(Debug)]
pub struct Catalog {
    pub file: PathBuf,
    pub spec: String,
    pub requirements: BTreeMap<String, RequirementInput>,
}

#[derive(Debug, Clone)]
pub struct Requirement {
    pub id: String,
    pub clause: String,
    pub level: Level,
    pub text: String,
}

impl From<&RequirementInput> for Requirement {
    fn from(r: &RequirementInput) -> Self {
        Requirement {
            id: r.id.clone(),
            clause: r.clause.clone(),
            level: r.level,
            text: r.text.clone(),
        }
    }
}

#[derive(Debug)]
pub struct Suite {
    pub name: String,
    pub file: PathBuf,
    pub protocol: Protocol,
    pub role: Role,
    pub transports: Vec<Transport>,
    pub vars: BTreeMap<String, String>,
    pub secrets: Vec<String>,
    pub timeout: Option<std::time::Duration>,
    pub background: Vec<model::BackgroundInput>,
    /// Finding codes that do not fail a case (a trailing `*` is a prefix).
    pub allow_findings: Vec<String>,
    pub peer: BTreeMap<String, String>,
    pub cases: Vec<Case>,
    pub catalog: Arc<Catalog>,
}

#[derive(Debug)]
pub struct Case {
    pub id: String,
    pub title: String,
    pub requirements: Vec<Requirement>,
    pub level: Level,
    /// The session state the case starts from.
    pub needs: model::Needs,
    pub tags: Vec<String>,
    pub clause: String,
    pub vars: BTreeMap<String, String>,
    pub transports: Vec<Transport>,
    pub peer: BTreeMap<String, String>,
    pub steps: Vec<Step>,
    pub loc: Loc,
}

impl Case {
    /// `--filter` matches a case ID, a tag or a requirement ID; a trailing
    /// `*` makes it a prefix.
    pub fn matches_filter(&self, f: &str) -> bool {
        let m = |s: &str| match f.strip_suffix('*') {
            Some(p) => s.starts_with(p),
            None => s == f,
        };
        m(&self.id) || self.tags.iter().any(|t| m(t)) || self.requirements.iter().any(|r| m(&r.id))
    }
}

#[derive(Debug)]
pub struct Step {
    pub input: StepInput,
    pub loc: Loc,
}
