//! `faultline run`: settings from file, environment and flags; logging; the
//! runtime; the node until a signal.

use std::path::Path;

use anyhow::{anyhow, Result};

use crate::config::{Config, Problems};
use crate::node::settings::{raw_from_toml, LogFormat, NodeSettings, RawNode};
use crate::node::{agent_specs, Node};

/// Loads everything, validates it (every problem reported at once), and runs
/// the node until SIGINT/SIGTERM.
pub fn run(config_path: Option<&Path>, flags: &[(String, String)]) -> Result<()> {
    let (config, file_node) = match config_path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| anyhow!("cannot read {}: {e}", p.display()))?;
            let origin = p.display().to_string();
            let config = Config::from_toml(&text, &origin);
            let node = raw_from_toml(&text, &origin);
            match (config, node) {
                (Ok(c), Ok(n)) => (c, n),
                (Err(a), Err(b)) => return Err(anyhow!("{a}{b}")),
                (Err(e), _) => return Err(anyhow!("{e}")),
                (_, Err(e)) => return Err(anyhow!("{e}")),
            }
        }
        None => (Config::defaults(), RawNode::default()),
    };
    let mut problems = Problems::default();
    let mut flag_layer = RawNode::default();
    for (k, v) in flags {
        flag_layer.set(k, v, &format!("flag --set {k}"), &mut problems);
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    let settings = NodeSettings::from_layers(&file_node, &env, &flag_layer);
    let settings = match (settings, problems.list()) {
        (Ok(s), p) if p.is_empty() => s,
        (result, mut flag_problems) => {
            if let Err(e) = result {
                flag_problems.extend(e.problems);
            }
            flag_problems.sort();
            flag_problems.dedup();
            return Err(anyhow!(
                "{}",
                crate::config::ConfigError {
                    origin: "node settings".to_owned(),
                    problems: flag_problems,
                }
            ));
        }
    };
    init_logging(settings.log_format);
    let runtime =
        crate::node::runtime(None).map_err(|e| anyhow!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let specs = agent_specs(&config);
        let node = Node::start(settings, config, specs).await?;
        node.run_until_signal().await?;
        tracing::info!("node stopped");
        Ok::<(), crate::node::NodeError>(())
    })?;
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
