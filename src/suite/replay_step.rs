//! The `replay` step: one side of a captured session played through the
//! case's endpoint, the device's against a platform under test or the
//! platform's for a camera under test, as `camcert replay` plays it ([`crate::capture::replay`]: fresh Call-IDs, tags
//! and branches, this run's addresses, digest responses for the live
//! nonces). Each answer is compared with the captured one after redaction;
//! a difference fails the step with the diff, and the replay goes on so
//! every difference is reported. An answer that never comes ends it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::Rng;

use super::{err, CaseRun, StepFail, DEFAULT_TIMEOUT};
use crate::capture::{decode, read, replay};
use crate::proto::sip::SipMessage;
use crate::suite::model::{ReplayInput, ReplaySideInput, Role};

/// The longest pause kept between two captured messages.
const MAX_GAP: Duration = Duration::from_secs(5);

impl CaseRun<'_> {
    pub(super) async fn replay(&mut self, r: &ReplayInput) -> Result<(), StepFail> {
        let platform = r.side == ReplaySideInput::Platform;
        match (r.side, self.suite.role) {
            (ReplaySideInput::Device, Role::Device) | (ReplaySideInput::Platform, Role::Platform) => {}
            (ReplaySideInput::Device, _) => return Err(err(
                "`replay: { as: device }` plays a device: it runs in suites where camcert is the device (`role: device`)",
            )),
            (ReplaySideInput::Platform, _) => return Err(err(
                "`replay: { as: platform }` plays a platform for a camera: it runs in suites where camcert is the platform (`role: platform`)",
            )),
        }
        let file = self.x(&r.file)?;
        let data = std::fs::read(&file).map_err(|e| err(format!("cannot read {file}: {e}")))?;
        let cap = read::read_capture(&data).map_err(|e| err(format!("{file}: {e}")))?;
        let mut dec = decode::Decoder::new();
        let mut events = Vec::new();
        for f in &cap.frames {
            dec.push(f, &mut |e| events.push(e));
        }
        dec.finish(cap.frames.last().map_or(0, |f| f.number), &mut |e| {
            events.push(e)
        });
        let mut script = if platform {
            replay::Script::platform_side(&events)
        } else {
            replay::Script::device_side(&events)
        }
        .map_err(|e| err(format!("{file}: {e}")))?;
        if let Some(u) = r.until {
            script.steps.retain(|s| s.at <= u.0);
        }
        if script.steps.is_empty() {
            return Err(err(format!("{file}: nothing of that side to play")));
        }
        // A played platform learns its device's address from what it sends.
        let mut peer = if platform {
            None
        } else {
            Some(
                self.ep
                    .default_peer
                    .ok_or_else(|| err("the platform under test has no address to play to"))?,
            )
        };
        let local = match peer {
            Some(t) => self.ep.local_addr_for(t),
            None => self.ep.local_addr(),
        };
        let target = peer.unwrap_or(local);
        let password = match &r.password {
            Some(p) => self.x(p)?,
            None => match self.vars.get("password").map(str::to_string) {
                Some(p) => self.x(&p)?,
                None => String::new(),
            },
        };
        let mut player = replay::Player::new(
            script,
            local,
            target,
            self.ep.transport(),
            password,
            rand::thread_rng().gen(),
        );
        let wait = r.timeout.map(|d| d.0).unwrap_or(DEFAULT_TIMEOUT);
        let mut fails = Vec::new();
        let mut inbox: VecDeque<SipMessage> = VecDeque::new();
        let mut last_send: Option<(Instant, Duration)> = None;
        // The step being waited for and until when.
        let mut waiting: Option<(usize, Instant)> = None;
        'run: while let Some(i) = player.position() {
            let date = chrono::Local::now()
                .format("%Y-%m-%dT%H:%M:%S%.3f")
                .to_string();
            if let Some(next) = player.next_send(&date) {
                let (_, bytes) = next.map_err(|e| {
                    err(format!("{file}: message {} of the device side: {e}", i + 1))
                })?;
                // The captured spacing, on protocol time.
                let at = player.steps()[i].at;
                if let Some((sent, then)) = last_send {
                    let gap = crate::proto::scaled(at.saturating_sub(then), self.scale);
                    let due = sent + gap.min(MAX_GAP);
                    let now = Instant::now();
                    if due > now {
                        tokio::time::sleep(due - now).await;
                    }
                }
                last_send = Some((Instant::now(), at));
                self.send_bytes(peer, bytes).await?;
                continue;
            }
            while let Some(m) = inbox.pop_front() {
                if let Some(hit) = player.received(m) {
                    if let Some(f) = judge(&player, &hit) {
                        fails.push(f);
                    }
                    continue 'run;
                }
            }
            let deadline = match waiting {
                Some((s, d)) if s == i => d,
                _ => {
                    let d = self.deadline(wait);
                    waiting = Some((i, d));
                    d
                }
            };
            match self.recv_routed(deadline, true).await {
                Ok(Some(inc)) => {
                    self.log("received", inc.from, &inc.raw);
                    if peer.is_none() {
                        peer = Some(inc.from);
                        player.set_peer(inc.from);
                    }
                    if let Ok(p) = SipMessage::parse(&inc.raw) {
                        inbox.push_back(p.message);
                    }
                }
                Ok(None) => {
                    let want = &player.steps()[i].message;
                    let shape: String = replay::shape(want)
                        .iter()
                        .map(|l| format!("    - {l}\n"))
                        .collect();
                    fails.push(
                        StepFail::new(
                            "replay.missing",
                            format!(
                                "{file}: no answer within {:.1} s; expected {} as captured (message {} of the capture's session):\n{shape}",
                                wait.as_secs_f64(),
                                decode::summary(want),
                                i + 1
                            ),
                        )
                        .exp(decode::summary(want), "nothing"),
                    );
                    break;
                }
                Err(e) => return Err(StepFail::new("transport", format!("{e:#}"))),
            }
        }
        match StepFail::join(fails) {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }
}

/// The failure of an answer that differs from the captured one: the diff,
/// and the first captured and live lines that differ.
fn judge(player: &replay::Player, hit: &replay::Matched) -> Option<StepFail> {
    let diff = hit.diff.as_ref()?;
    let want = &player.steps()[hit.step].message;
    let first = |p: &str| {
        diff.lines()
            .find_map(|l| l.trim_start().strip_prefix(p).map(|x| x.trim().to_string()))
            .unwrap_or_else(|| "(no such line)".into())
    };
    Some(
        StepFail::new(
            "replay",
            format!(
                "{} differs from the captured {} (message {} of the capture's session; - captured, + live):\n{diff}",
                decode::summary(&hit.live),
                decode::summary(want),
                hit.step + 1
            ),
        )
        .exp(first("- "), first("+ ")),
    )
}
