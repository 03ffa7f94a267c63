//! The command line: `frontdesk serve | kb ingest | kb search | eval retrieval`, each with the
//! global `--config FILE`, `--site ID` and `--json`.

pub mod eval;
pub mod kb;

use crate::config::Settings;
use crate::ids::SiteId;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Frontdesk: self-hosted AI customer support.
#[derive(Debug, Parser)]
#[command(name = "frontdesk", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// TOML file with the settings to change (layered over the documented defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Site (tenant) id to work on; default: the first site of the config.
    #[arg(long, global = true, value_name = "ID")]
    pub site: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the chat server (demo page at http://127.0.0.1:8080/ by default).
    Serve,
    /// Knowledge-base commands.
    Kb {
        #[command(subcommand)]
        command: KbCommand,
    },
    /// Evaluation commands.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Ingest a folder or file of help articles (or a JSONL of resolved tickets) into kb.data_dir.
    Ingest(KbIngestArgs),
    /// Search the knowledge base and print the hits with their scores.
    Search(KbSearchArgs),
}

/// `frontdesk kb ingest PATH`.
#[derive(Debug, Clone, Args)]
pub struct KbIngestArgs {
    /// Folder or file to ingest.
    pub path: PathBuf,
}

/// `frontdesk kb search QUERY [-k 5] [--semantic-ratio R]`.
#[derive(Debug, Clone, Args)]
pub struct KbSearchArgs {
    /// The question to search for.
    pub query: String,
    /// Number of articles to return.
    #[arg(short = 'k', default_value_t = 5)]
    pub k: usize,
    /// 0 = keyword only, 1 = semantic only; default: kb.semantic_ratio.
    #[arg(long, value_name = "R")]
    pub semantic_ratio: Option<f32>,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Retrieval metrics (Recall@k, MRR@10, nDCG@10) of a knowledge base on labelled questions.
    Retrieval(EvalRetrievalArgs),
    /// Fit and check the retrieval confidence model (reliability table, expected calibration error).
    Calibrate(EvalCalibrateArgs),
}

/// `frontdesk eval calibrate --kb PATH --questions FILE --banking77 FILE --clinc150 FILE [--write FILE]`.
#[derive(Debug, Clone, Args)]
pub struct EvalCalibrateArgs {
    /// Help-center folder to index.
    #[arg(long, value_name = "PATH")]
    pub kb: PathBuf,
    /// JSONL questions: positives when their top article is relevant.
    #[arg(long, value_name = "FILE")]
    pub questions: PathBuf,
    /// BANKING77 CSV (`text,category`): negatives (not answerable from the help center).
    #[arg(long, value_name = "FILE")]
    pub banking77: PathBuf,
    /// CLINC150 JSON (`train`/`val`/`oos_*` lists of `[text, intent]`): negatives.
    #[arg(long, value_name = "FILE")]
    pub clinc150: PathBuf,
    /// Negatives drawn from each dataset (deterministic, evenly spaced).
    #[arg(long, default_value_t = 150)]
    pub negatives_per_dataset: usize,
    /// Write the fitted model (JSON) to this file, e.g. kb/calibration/embedded.json.
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
}

/// `frontdesk eval retrieval --kb PATH --questions FILE [--semantic-ratio R | --compare] [--verbose]`.
#[derive(Debug, Clone, Args)]
pub struct EvalRetrievalArgs {
    /// Help-center folder to index and evaluate.
    #[arg(long, value_name = "PATH")]
    pub kb: PathBuf,
    /// JSONL file of questions with their relevant article ids.
    #[arg(long, value_name = "FILE")]
    pub questions: PathBuf,
    /// Evaluate this semantic ratio only.
    #[arg(long, value_name = "R", conflicts_with = "compare")]
    pub semantic_ratio: Option<f32>,
    /// Compare keyword, hybrid and semantic retrieval side by side.
    #[arg(long)]
    pub compare: bool,
    /// Print every question with its ranking.
    #[arg(long)]
    pub verbose: bool,
}

/// The site a command works on: `--site`, else the first configured site.
pub fn resolve_site(settings: &Settings, global: &GlobalArgs) -> anyhow::Result<SiteId> {
    match &global.site {
        Some(raw) => {
            let id = SiteId::parse(raw)?;
            anyhow::ensure!(
                settings.sites.iter().any(|site| site.id == id),
                "--site {id}: no such site in the config (sites: {})",
                settings
                    .sites
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(id)
        }
        None => settings
            .sites
            .first()
            .map(|site| site.id.clone())
            .ok_or_else(|| anyhow::anyhow!("the config declares no site")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_work_after_subcommands() {
        let cli = Cli::try_parse_from([
            "frontdesk",
            "kb",
            "search",
            "reset password",
            "-k",
            "3",
            "--json",
            "--site",
            "demo",
        ])
        .expect("parses");
        assert!(cli.global.json);
        assert_eq!(cli.global.site.as_deref(), Some("demo"));
        match cli.command {
            Command::Kb {
                command: KbCommand::Search(args),
            } => {
                assert_eq!(args.query, "reset password");
                assert_eq!(args.k, 3);
                assert_eq!(args.semantic_ratio, None);
            }
            other => panic!("parsed as {other:?}"),
        }
        let conflict = Cli::try_parse_from([
            "frontdesk",
            "eval",
            "retrieval",
            "--kb",
            "k",
            "--questions",
            "q",
            "--semantic-ratio",
            "0.5",
            "--compare",
        ]);
        assert!(
            conflict.is_err(),
            "--semantic-ratio and --compare exclude each other"
        );
    }
}
