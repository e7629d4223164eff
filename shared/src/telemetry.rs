//! Logging set-up: JSON in Lambda (honouring AWS_LAMBDA_LOG_FORMAT and
//! AWS_LAMBDA_LOG_LEVEL), readable text locally. Called once per process.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json = match std::env::var("AWS_LAMBDA_LOG_FORMAT").or_else(|_| std::env::var("LOG_FORMAT"))
    {
        Ok(format) => format.eq_ignore_ascii_case("json"),
        Err(_) => in_lambda,
    };
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|l| l.to_ascii_lowercase())
        .unwrap_or_else(|| "info".into());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
    // A second init (tests, or a host that already set one) keeps the first.
    let _ = result;
}
