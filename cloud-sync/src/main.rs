//! `markoff-central`: tools for the central side of Markoff.

use clap::Parser;

/// Central side of Markoff. Lists the streams gateways upload; the database commands
/// (migrate, add-gateway, serve) come with the central schema.
#[derive(Debug, Parser)]
#[command(name = "markoff-central", version)]
struct Cli {
    /// List the streams a gateway uploads, one per line.
    #[arg(long)]
    streams: bool,
}

fn main() {
    let cli = Cli::parse();
    if cli.streams {
        for s in markoff_cloud_sync::Stream::ALL {
            println!("{s}");
        }
    }
}
