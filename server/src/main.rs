//! `frontdesk`: see `frontdesk --help`.

use anyhow::Context;
use clap::Parser;
use frontdesk::cli::{Cli, Command, EvalCommand, KbCommand};
use frontdesk::config::{ConfigSources, Settings};
use frontdesk::startup::Application;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_chain(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by `: `, skipping a cause whose text the message already
/// carries (several errors name their source in their own message).
fn error_chain(err: &anyhow::Error) -> String {
    let mut out = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(&ConfigSources::from_process(cli.global.config.clone()))?;
    frontdesk::telemetry::init(&settings.log).map_err(anyhow::Error::msg)?;
    match &cli.command {
        Command::Serve => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(serve(settings, cli.global.json))
        }
        Command::Kb {
            command: KbCommand::Ingest(args),
        } => frontdesk::cli::kb::ingest(&settings, &cli.global, args),
        Command::Kb {
            command: KbCommand::Search(args),
        } => frontdesk::cli::kb::search(&settings, &cli.global, args),
        Command::Eval {
            command: EvalCommand::Retrieval(args),
        } => frontdesk::cli::eval::retrieval(&settings, &cli.global, args),
        Command::Eval {
            command: EvalCommand::Calibrate(args),
        } => frontdesk::cli::eval::calibrate(&settings, &cli.global, args),
        Command::Eval {
            command: EvalCommand::Classify(args),
        } => frontdesk::cli::eval_analysis::classify(&settings, &cli.global, args),
        Command::Eval {
            command: EvalCommand::Sentiment(args),
        } => frontdesk::cli::eval_analysis::sentiment(&cli.global, args),
        Command::Eval {
            command: EvalCommand::Decisions(args),
        } => frontdesk::cli::eval_decisions::decisions(&settings, &cli.global, args),
        Command::HashPassword => {
            use std::io::IsTerminal;
            // On a terminal: asked without echo; piped: the first line of standard input.
            let password = if std::io::stdin().is_terminal() {
                rpassword::prompt_password("Password (not shown): ")
                    .context("reading the password")?
            } else {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                line.trim_end_matches(['\r', '\n']).to_string()
            };
            anyhow::ensure!(
                password.trim().chars().count() >= 8,
                "the password must have at least 8 characters besides spaces"
            );
            let hash =
                frontdesk::engine::inbox::hash_password(&password).map_err(anyhow::Error::msg)?;
            println!("{hash}");
            Ok(())
        }
    }
}

async fn serve(settings: Settings, json: bool) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "url": app.url(), "site_key": app.demo_site_key() })
        );
    } else {
        println!("Frontdesk is ready: {}", app.url());
        println!("Demo site key: {}", app.demo_site_key());
        if app.inbox_enabled() {
            println!("Agent inbox: {}inbox", app.url());
        }
    }
    let shutdown = app.shutdown_handle();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received; letting in-flight answers finish");
        shutdown.shutdown();
    });
    app.run_until_stopped()
        .await
        .context("the server stopped with an error")
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
