//! `chat-server`: reads its configuration (flags, environment, `--config`
//! file), then serves until SIGTERM (which drains) or SIGINT.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match chat_server::Config::load() {
        Ok(config) => config,
        // --help, --version and bad flags: clap prints them its own way.
        Err(chat_server::ServerError::Args(e)) => e.exit(),
        Err(e) => {
            eprintln!("chat-server: {}", chat_server::logging::error_chain(&e));
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Err(e) = chat_server::logging::init(&config.ops) {
        eprintln!("chat-server: {e}");
        return std::process::ExitCode::FAILURE;
    }
    match chat_server::serve(&config, chat_server::shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(
                "chat-server failed: {}",
                chat_server::logging::error_chain(&e)
            );
            std::process::ExitCode::FAILURE
        }
    }
}
