//! `faultline tail`: decisions as the node makes them, one readable line
//! each (or JSON lines), filtered by agent and service.
//!
//! On JetStream it subscribes to `<prefix>.out.<agent|*>.<service|*>` (the
//! server filters); on an embedded node it long-polls `GET /v1/decisions`.

use std::io::Write;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::StreamExt;

use super::target::{http_agent, nats_connect, Target};
use crate::events::subject::output_subject;
use crate::events::{summary, Codec, Event};

/// What to follow and how to print it.
#[derive(Clone, Debug)]
pub struct TailArgs {
    /// Only this agent's decisions.
    pub agent: Option<String>,
    /// Only decisions about this service.
    pub service: Option<String>,
    /// JSON lines instead of readable lines.
    pub json: bool,
    /// Stop after this many decisions.
    pub count: Option<u64>,
    /// HTTP only: start from this log sequence instead of now.
    pub after: Option<u64>,
}

impl TailArgs {
    fn wants(&self, e: &Event) -> bool {
        let agent = summary::agent(e);
        self.agent.as_deref().is_none_or(|a| a == agent)
            && self.service.as_deref().is_none_or(|s| s == e.subject)
    }
}

/// One readable line: time, agent, service, type, what changed, why.
pub fn describe(e: &Event) -> String {
    let kind = e.event_type().kind();
    let what = summary::what(e);
    let agent = summary::agent(e);
    let mut line = format!("{} {agent:<11} {:<16} {kind:<11} {what}", e.time, e.subject);
    if let Some(reason) = summary::reason(e) {
        line.push_str(" | ");
        line.push_str(&reason);
    }
    line
}

/// Follows decisions until `count` is reached or the connection ends.
pub async fn tail(target: &Target, args: &TailArgs, out: &mut impl Write) -> Result<()> {
    let mut seen = 0u64;
    let mut emit = |e: &Event, out: &mut dyn Write| -> Result<bool> {
        if !args.wants(e) {
            return Ok(false);
        }
        if args.json {
            out.write_all(&Codec::Json.encode(e))?;
            out.write_all(b"\n")?;
        } else {
            writeln!(out, "{}", describe(e))?;
        }
        out.flush()?;
        seen += 1;
        Ok(args.count.is_some_and(|c| seen >= c))
    };
    match target {
        Target::Nats { url, prefix } => {
            if args.after.is_some() {
                bail!("--after is for --http; on JetStream use `faultline replay` for the past");
            }
            let client = nats_connect(url).await?;
            let subject = output_subject(
                prefix,
                args.agent.as_deref().unwrap_or("*"),
                args.service.as_deref().unwrap_or("*"),
            );
            let mut sub = client
                .subscribe(subject.clone())
                .await
                .with_context(|| format!("subscribing to {subject}"))?;
            client.flush().await.context("subscribing")?;
            eprintln!("tail: following {subject}");
            while let Some(m) = sub.next().await {
                match Codec::MsgPack.decode(&m.payload) {
                    Ok(e) => {
                        if emit(&e, out)? {
                            return Ok(());
                        }
                    }
                    Err(r) => eprintln!("{}: undecodable decision: {r}", m.subject),
                }
            }
            Ok(())
        }
        Target::Http { url, token } => {
            let agent = http_agent();
            let mut after = args.after;
            eprintln!("tail: following {url}/v1/decisions");
            loop {
                let query = match after {
                    Some(a) => format!("{url}/v1/decisions?after={a}&wait_ms=1000"),
                    None => format!("{url}/v1/decisions"),
                };
                let (a, t) = (agent.clone(), token.clone());
                let page = tokio::task::spawn_blocking(move || get_json(&a, &query, t.as_deref()))
                    .await
                    .map_err(|e| anyhow!("{e}"))??;
                for d in page["decisions"].as_array().into_iter().flatten() {
                    let e: Event = serde_json::from_value(d["event"].clone())
                        .context("the node sent an undecodable decision")?;
                    if emit(&e, out)? {
                        return Ok(());
                    }
                }
                after = Some(page["next"].as_u64().unwrap_or(after.unwrap_or(0)));
            }
        }
    }
}

fn get_json(agent: &ureq::Agent, url: &str, token: Option<&str>) -> Result<serde_json::Value> {
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut r = req.call().with_context(|| format!("GET {url}"))?;
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status != 200 {
        bail!(
            "GET {url}: HTTP {status}: {}",
            v["error"].as_str().unwrap_or(&text)
        );
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breaker_decision_reads_as_one_line_with_its_reason() {
        let line = r#"{"specversion":"1.0","id":"breaker-7-0","source":"faultline/breaker","type":"faultline.breaker","subject":"pay","time":"2026-01-01T00:00:01Z","causeseq":7,"data":{"scope":"service","target":"pay","from":"closed","to":"open","trigger":"failure_rate","failure_rate":0.8,"calls":100,"failed":80,"slow":0,"threshold":0.5,"reason":"80 % of 100 calls failed"}}"#;
        let e = Codec::Json.decode(line.as_bytes()).unwrap();
        assert_eq!(
            describe(&e),
            "2026-01-01T00:00:01Z breaker     pay              breaker     service pay closed -> open | 80 % of 100 calls failed"
        );
        let only_hub = TailArgs {
            agent: Some("hub".into()),
            service: None,
            json: false,
            count: None,
            after: None,
        };
        assert!(!only_hub.wants(&e));
    }
}
