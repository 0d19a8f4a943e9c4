//! The binary: parse the command line, set up logging, run the command, map errors to exit codes (docs/contract.md:
//! 0 success, 1 the command found a problem, 2 unusable input or flags).

use std::process::ExitCode;

use clap::Parser;
use kube::CustomResourceExt;
use pullsecret_injector::commands::args::{Cli, Command};
use pullsecret_injector::commands::offline::{self, MutateArgs};
use pullsecret_injector::core::cluster_pull_secret::ClusterPullSecret;
use pullsecret_injector::serve;
use pullsecret_injector::serve::certs;
use pullsecret_injector::serve::config::{LogArgs, LogFormat, ServeConfig};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Locked only by the offline commands: a lock held here would block every other thread that logs.
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    let result: Result<(), (u8, String)> = match &cli.command {
        Command::Mutate(cmd) => offline::mutate(
            &MutateArgs {
                secrets: &cmd.secrets.secrets,
                file: &cmd.file,
                output: cmd.output,
                namespace: &cmd.namespace,
                policy: &cmd.policy.policy(),
            },
            &mut stdout,
            &mut stderr,
        )
        .map_err(|e| (e.exit_code(), e.to_string())),
        Command::Explain(cmd) => {
            offline::explain(&cmd.image, &cmd.secrets.secrets, &cmd.namespace, &cmd.listed, &mut stdout)
                .map_err(|e| (e.exit_code(), e.to_string()))
        }
        Command::Serve(cmd) => run_serve(cmd),
        Command::Certs(cmd) => run_certs(cmd),
        Command::Verify(cmd) => run_verify(cmd),
        Command::Crd => {
            let crd = ClusterPullSecret::crd();
            print!("{}", serde_yaml_ng::to_string(&crd).expect("the CRD serializes"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            // One display-safe line, whatever input the message quotes.
            eprintln!("error: {}", pullsecret_injector::safe_text::text(&message));
            ExitCode::from(code)
        }
    }
}

fn init_logging(args: &LogArgs) -> Result<(), (u8, String)> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .map_err(|e| (2, format!("--log-level {:?}: {e}", args.log_level)))?;
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

fn run_serve(config: &ServeConfig) -> Result<(), (u8, String)> {
    init_logging(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| (2, format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(serve::run(config.clone())).map_err(|e| (2, e.to_string()))
}

fn run_certs(cmd: &pullsecret_injector::commands::args::CertsCmd) -> Result<(), (u8, String)> {
    if cmd.dns.is_empty() && cmd.ip.is_empty() {
        return Err((2, "certs: give at least one --dns NAME or --ip ADDR".into()));
    }
    if cmd.days == 0 {
        return Err((2, "--days must be at least 1".into()));
    }
    let bundle = certs::generate(&cmd.dns, &cmd.ip, cmd.days).map_err(|e| (2, format!("certs: {e}")))?;
    certs::write_bundle(&cmd.out, &bundle).map_err(|e| (2, format!("--out {}: {e}", cmd.out.display())))?;
    eprintln!("wrote {0}/ca.crt, {0}/tls.crt, {0}/tls.key; caBundle for the webhook configuration:", cmd.out.display());
    println!("{}", certs::ca_bundle(&bundle));
    Ok(())
}

fn run_verify(cmd: &pullsecret_injector::commands::args::VerifyCmd) -> Result<(), (u8, String)> {
    use pullsecret_injector::sources::manifests::Manifests;
    use pullsecret_injector::verify::{self, VerifyOptions};
    let manifests = Manifests::load(&cmd.secrets.secrets, &cmd.namespace).map_err(|e| (2, e.to_string()))?;
    if cmd.insecure_skip_tls_verify {
        eprintln!("{}", verify::INSECURE_WARNING);
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
        .map_err(|e| (2, format!("cannot start the async runtime: {e}")))?;
    let results = runtime.block_on(verify::verify(&manifests.secrets, &options)).map_err(|e| (2, e.to_string()))?;
    let lint = verify::lint(&manifests.secrets);
    verify::render(&results, &lint, cmd.output, &mut std::io::stdout().lock(), &mut std::io::stderr().lock())
        .map_err(|e| (2, format!("cannot write the report: {e}")))?;
    if verify::all_ok(&results) { Ok(()) } else { Err((1, "some credentials do not work (see above)".into())) }
}
