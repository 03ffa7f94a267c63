//! The command line: `frontdesk serve | kb ingest | kb search | eval retrieval`, each with the
//! global `--config FILE`, `--site ID` and `--json`.

pub mod eval;
pub mod eval_analysis;
pub mod eval_decisions;
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
    /// Read a password from standard input and print its Argon2id hash for
    /// `[[helpdesk.inbox.agents]] password_hash`.
    HashPassword,
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
    /// Intent classification (logistic head and nearest centroid on embeddings) on BANKING77 or CLINC150.
    Classify(EvalClassifyArgs),
    /// VADER sentiment against human ratings (Pearson r, sign accuracy).
    Sentiment(EvalSentimentArgs),
    /// The answer / draft / handoff decision (and its reason) on labelled questions.
    Decisions(EvalDecisionsArgs),
}

/// `frontdesk eval decisions --kb PATH --questions FILE [--taxonomy FILE] [--verbose]`.
#[derive(Debug, Clone, Args)]
pub struct EvalDecisionsArgs {
    /// Help-center folder to index.
    #[arg(long, value_name = "PATH")]
    pub kb: PathBuf,
    /// JSONL questions with `expected` = `answer`, `draft` or `handoff:<reason>`.
    #[arg(long, value_name = "FILE")]
    pub questions: PathBuf,
    /// A config file whose first site (or --site) holds the taxonomy, e.g.
    /// config/example-plausible.toml; default: the loaded config's site.
    #[arg(long, value_name = "FILE")]
    pub taxonomy: Option<PathBuf>,
    /// Print every question, not only the misses.
    #[arg(long)]
    pub verbose: bool,
    /// Ablation: analyse without the support-signal and human-request rules.
    #[arg(long)]
    pub without_rules: bool,
}

/// Which intent dataset `eval classify` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClassifyDataset {
    /// BANKING77 CSV (`text,category`).
    Banking77,
    /// CLINC150 JSON (`train`, `val`, `oos_train`, `oos_val` lists of `[text, intent]`).
    Clinc150,
}

impl ClassifyDataset {
    pub fn name(self) -> &'static str {
        match self {
            Self::Banking77 => "banking77",
            Self::Clinc150 => "clinc150",
        }
    }
}

/// `frontdesk eval classify --dataset banking77|clinc150 --data FILE [--test FILE | --test-fraction 0.2] [--seed N] [--repeats R] [--shots K]`.
#[derive(Debug, Clone, Args)]
pub struct EvalClassifyArgs {
    #[arg(long, value_enum)]
    pub dataset: ClassifyDataset,
    /// Training data (BANKING77 CSV, CLINC150 JSON).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Test data in the same format (CLINC150: with `test` and `oos_test` lists).
    #[arg(long, value_name = "FILE", conflicts_with = "test_fraction")]
    pub test: Option<PathBuf>,
    /// BANKING77 without --test: share of each class held out for testing.
    #[arg(long, value_name = "F", default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Seed of the split and of the few-shot sample.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Repeat with seeds seed, seed+1, … (few-shot samples; the split stays that of --seed).
    #[arg(long, default_value_t = 1)]
    pub repeats: usize,
    /// Training examples per class (default: all).
    #[arg(long, value_name = "K")]
    pub shots: Option<usize>,
    /// L2 penalty of the logistic head (scikit-learn's 1/C); the default 0.1 was chosen with
    /// --validation on BANKING77 (BENCHMARKS.md).
    #[arg(long, default_value_t = 0.1)]
    pub alpha: f32,
    /// Evaluate on a validation slice (20% of the training part, stratified) instead of the
    /// test split: for choosing --alpha without touching the test split.
    #[arg(long)]
    pub validation: bool,
    /// Add each class's name ("card_arrival" → "card arrival") as one more training example,
    /// as the taxonomy classifier learns from each node's description.
    #[arg(long)]
    pub label_names: bool,
    /// Centre the embeddings on the training mean and renormalise before fitting.
    #[arg(long)]
    pub center: bool,
    /// L-BFGS iterations at most for the logistic head.
    #[arg(long, default_value_t = 100)]
    pub max_iterations: u64,
    /// Folder of the embedding cache (default ~/.cache/frontdesk/eval-embeddings).
    #[arg(long, value_name = "DIR")]
    pub embedding_cache: Option<PathBuf>,
}

/// `frontdesk eval sentiment FILE`.
#[derive(Debug, Clone, Args)]
pub struct EvalSentimentArgs {
    /// VADER ground-truth TSV: `id<TAB>mean rating (−4..4)<TAB>text`.
    pub file: PathBuf,
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
