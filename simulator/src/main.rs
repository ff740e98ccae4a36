//! `exchange-sim`: run the simulator by hand, with two mailboxes and a service account.
//!
//! `cargo run -p calvert-exchange-sim -- [--https] [ADDR]` (default 127.0.0.1:8443);
//! Ctrl-C stops it. With `--https` it serves a self-signed certificate made at start
//! and writes it beside the other temporary files, for `calvert check --ca-bundle`.

use calvert_exchange_sim::{Exchange, SimItem, start_https_on, start_on};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let https = args.iter().any(|a| a == "--https");
    let addr = args
        .iter()
        .find(|a| *a != "--https")
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:8443".into());
    let addr = addr.parse().map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{addr:?} is not an address: {e}"),
        )
    })?;
    let exchange = Exchange::default();
    exchange.add_account("calvert", "secret", None);
    for mailbox in ["kim@flexi.se", "eva@flexi.se"] {
        exchange.add_mailbox(mailbox);
    }
    let now = jiff::Timestamp::now().as_second();
    exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("kim-1", "Lunch", now - 600, now + 1800),
    );
    let server = if https {
        start_https_on(exchange, addr).await?
    } else {
        start_on(exchange, addr).await?
    };
    if let Some(pem) = server.certificate_pem() {
        let path = std::env::temp_dir().join(format!("exchange-sim-{}.pem", server.addr.port()));
        std::fs::write(&path, pem)?;
        println!("certificate (give it as --ca-bundle): {}", path.display());
    }
    println!(
        "Exchange simulator at {} (account calvert / secret; mailboxes kim@flexi.se, eva@flexi.se)",
        server.ews_url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
