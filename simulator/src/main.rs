//! `exchange-sim`: run the simulator by hand, with two mailboxes and a service account.
//!
//! `cargo run -p calvert-exchange-sim -- [ADDR]` (default 127.0.0.1:8443); Ctrl-C stops it.

use calvert_exchange_sim::{Exchange, SimItem, start_on};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
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
    let server = start_on(exchange, addr).await?;
    println!(
        "Exchange simulator at {} (account calvert / secret; mailboxes kim@flexi.se, eva@flexi.se)",
        server.ews_url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
