//! The binary: parse the command line, set up logging, run the command, map errors to exit codes (docs/contract.md:
//! 0 success, 1 the command found a problem, 2 unusable input or flags).
//!
//! Standard output and error are written through [`PipeOut`]: a reader that goes away (`| head -1`) ends the output
//! quietly, and the exit status is still the one the command's work decides.

use std::io::Write;
use std::process::ExitCode;

use kube::CustomResourceExt;
use pullsecret_injector::commands::args::{self, Command};
use pullsecret_injector::commands::explain::{self, ExplainArgs, Subject};
use pullsecret_injector::commands::live::{self, Cluster, Credentials};
use pullsecret_injector::commands::mutate::{self, MutateArgs};
use pullsecret_injector::commands::{CliError, PipeOut, certs};
use pullsecret_injector::core::cluster_pull_secret::ClusterPullSecret;
use pullsecret_injector::serve;
use pullsecret_injector::serve::config::{LogArgs, LogFormat, ServeConfig};

fn main() -> ExitCode {
    let cli = args::parse();
    // Locked only by the commands that print: a lock held here would block every other thread that logs.
    let mut stdout = PipeOut::new(std::io::stdout());
    let mut stderr = PipeOut::new(std::io::stderr());
    let result: Result<(), CliError> = match &cli.command {
        Command::Mutate(cmd) => with_credentials(&cmd.secrets, cmd.namespace.as_deref(), |credentials, namespace| {
            mutate::mutate(
                &MutateArgs {
                    credentials,
                    file: &cmd.file,
                    output: cmd.output,
                    namespace,
                    policy: &cmd.policy.policy(),
                    fail_on_warning: cmd.fail_on_warning,
                    pass_secrets: cmd.pass_secrets,
                },
                &mut stdout,
                &mut stderr,
            )
        }),
        Command::Explain(cmd) => with_credentials(&cmd.secrets, cmd.namespace.as_deref(), |credentials, namespace| {
            let subject = match (&cmd.image, &cmd.filename) {
                (_, Some(file)) => Subject::File(file),
                // Live mode: `pod/web` is an object of the cluster (an image of that name is `docker.io/pod/web`).
                (Some(image), None) => match (&credentials, live::object_reference(image)) {
                    (Credentials::Cluster(_), Some((resource, name))) => Subject::Object(resource, name),
                    _ => Subject::Image(image),
                },
                (None, None) => unreachable!("clap requires an image or -f"),
            };
            let policy = pullsecret_injector::core::decision::Policy {
                node_providers: cmd.node.providers(),
                expiry_warning: cmd.expiry_warning,
                ..Default::default()
            };
            let args = ExplainArgs { subject, credentials, namespace, listed: &cmd.listed, policy: &policy };
            explain::explain(&args, &mut stdout)
        }),
        Command::Serve(cmd) => run_serve(cmd).map_err(CliError::Usage),
        Command::Certs(cmd) => certs::run(cmd, &mut stdout, &mut stderr),
        Command::Verify(cmd) => run_verify(cmd, &mut stdout, &mut stderr),
        Command::Crd => {
            let crd = ClusterPullSecret::crd();
            let text = serde_yaml_ng::to_string(&crd).expect("the CRD serializes");
            stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(CliError::Io)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One display-safe line per message, whatever input it quotes.
            for message in error.messages() {
                let _ = writeln!(stderr, "error: {}", pullsecret_injector::safe_text::text(&message));
            }
            let _ = stderr.flush();
            ExitCode::from(error.exit_code())
        }
    }
}

/// Runs `command` with where its credentials come from (files, or the cluster without `--secrets`) and its
/// namespace: `-n`, else the context's in live mode (as kubectl), else `default`.
fn with_credentials<T>(
    secrets: &args::SecretsArgs,
    namespace: Option<&str>,
    command: impl FnOnce(Credentials<'_>, &str) -> Result<T, CliError>,
) -> Result<T, CliError> {
    if !secrets.secrets.is_empty() {
        return command(Credentials::Files(&secrets.secrets), namespace.unwrap_or("default"));
    }
    let cluster = Cluster::connect(&secrets.cluster)?;
    let namespace = namespace.unwrap_or(&cluster.namespace).to_string();
    command(Credentials::Cluster(&cluster), &namespace)
}

fn init_logging(args: &LogArgs) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .map_err(|e| format!("--log-level {:?}: {e}", args.log_level))?;
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(std::io::stderr().is_terminal());
    // Every field value of every line is display-safe (safe_text): no forged lines, no terminal controls.
    use pullsecret_injector::safe_text::{SafeJsonLines, log_fields};
    match args.log_format {
        LogFormat::Json => builder
            .with_writer(|| SafeJsonLines(std::io::stderr()))
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder.with_writer(std::io::stderr).fmt_fields(log_fields()).init(),
    }
    Ok(())
}

fn run_serve(config: &ServeConfig) -> Result<(), String> {
    init_logging(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(serve::run(config.clone())).map_err(|e| e.to_string())
}

fn run_verify(
    cmd: &pullsecret_injector::commands::args::VerifyCmd,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    use pullsecret_injector::sources::manifests::Manifests;
    use pullsecret_injector::verify::{self, VerifyOptions, VerifyOutput};
    use std::io::IsTerminal as _;
    let manifests =
        with_credentials(&cmd.secrets, cmd.namespace.as_deref(), |credentials, namespace| match credentials {
            Credentials::Files(files) => Ok(Manifests::load(files, namespace)?),
            Credentials::Cluster(cluster) => cluster.pull_secrets((!cmd.all_namespaces).then_some(namespace)),
        })?;
    if cmd.insecure_skip_tls_verify {
        writeln!(err, "{}", verify::INSECURE_WARNING)?;
    }
    let options = VerifyOptions {
        ca_file: cmd.ca_file.clone(),
        insecure_skip_tls_verify: cmd.insecure_skip_tls_verify,
        timeout: cmd.timeout,
        concurrency: cmd.concurrency.max(1),
        // Run by an operator on files they chose: local registries are fine here.
        addresses: verify::AddressPolicy::ANY,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))?;
    // The progress line only on a terminal: piped, stderr stays plain lines (a CI log).
    let mut terminal = std::io::stderr();
    let progress: Option<&mut dyn Write> = if std::io::stderr().is_terminal() { Some(&mut terminal) } else { None };
    let results_out: Option<&mut dyn Write> = (cmd.output == VerifyOutput::Jsonl).then_some(&mut *out);
    let mut reporter = verify::progress::Reporter::new(progress, results_out);
    let results = runtime
        .block_on(verify::verify_observed(&manifests.secrets, &options, &mut reporter))
        .map_err(|e| CliError::Usage(e.to_string()))?;
    if let Some(error) = reporter.error.take() {
        return Err(CliError::Usage(format!("cannot write the report: {error}")));
    }
    drop(reporter);
    let lint = verify::lint(&manifests.secrets);
    verify::render(&results, &lint, cmd.output, out, err)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Usage(format!("cannot write the report: {e}")))?;
    if verify::all_ok(&results) {
        Ok(())
    } else {
        Err(CliError::Problem("some credentials do not work (see above)".into()))
    }
}
