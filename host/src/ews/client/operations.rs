//! The EWS operations Calvert uses, each one request (or a few) built by
//! [`crate::ews::request`], sent with retries, and read by the reply parsers:
//! the calendar window, subscriptions and their events, folder sync, and writes.

use super::retry::Repeat;
use super::{ClientError, EwsClient};
use crate::component::wit::CalendarItem;
use crate::ews::calendar::{
    CalendarPage, SyncRound, parse_find_item, parse_get_item, parse_saved_items,
    parse_sync_folder_items,
};
use crate::ews::notification::{EventsReply, Subscribed, parse_events, parse_subscribe};
use crate::ews::request::Mailbox;
use crate::ews::response::{self, EwsAction, EwsError};
use crate::ews::xml;

/// Items fetched per GetItem call.
pub const GET_ITEM_BATCH: usize = 50;
/// How often a window is split in two when a page does not hold all its items.
const MAX_SPLITS: u32 = 8;

/// A part of the calendar window to read: [from, to), and how often it was split.
type Window = (i64, i64, u32);

/// The two halves of `window` to read instead, when its page did not hold all its
/// items; None when it may not be split further (too deep, or a minute or less).
fn halves((from, to, depth): Window) -> Option<[Window; 2]> {
    if depth >= MAX_SPLITS || to - from <= 60 {
        return None;
    }
    let middle = from + (to - from) / 2;
    Some([(from, middle, depth + 1), (middle, to, depth + 1)])
}

/// The first saved item of a CreateItem/UpdateItem reply.
fn first_saved(reply: &str) -> Result<(String, String), EwsError> {
    parse_saved_items(reply)?
        .into_iter()
        .next()
        .unwrap_or(Err(EwsError::Unexpected {
            expected: "a response message",
        }))
}

/// Every response message of a reply succeeded (DeleteItem).
fn all_succeeded(reply: &str) -> Result<(), EwsError> {
    let root = xml::parse(reply)?;
    for message in response::response_messages(response::body(&root)?)? {
        message.into_result()?;
    }
    Ok(())
}

impl EwsClient {
    /// Every concrete item overlapping [start, end), with the fields only GetItem
    /// returns. A window whose page is not complete is split in two (CalendarView
    /// has no paging), at most `MAX_SPLITS` (8) times deep; items are de-duplicated by id.
    pub async fn calendar(
        &self,
        mailbox: &Mailbox,
        start: i64,
        end: i64,
        page_size: u32,
    ) -> Result<Vec<CalendarItem>, ClientError> {
        let mut windows = vec![(start, end, 0u32)];
        let mut found: std::collections::BTreeMap<String, CalendarItem> =
            std::collections::BTreeMap::new();
        while let Some(window) = windows.pop() {
            let (from, to, _) = window;
            let page = self.find_page(mailbox, from, to, page_size).await?;
            if !page.includes_last_item_in_range {
                let Some([first, second]) = halves(window) else {
                    return Err(self.ews(EwsError::Response {
                        code: "ErrorExceededFindCountLimit".into(),
                        text: format!("more than {page_size} items in one minute of the calendar"),
                        back_off: None,
                    }));
                };
                // The earlier half is read first.
                windows.push(second);
                windows.push(first);
                continue;
            }
            for item in page.items {
                found.insert(item.id.clone(), item);
            }
        }
        let ids: Vec<String> = found.keys().cloned().collect();
        let mut items = Vec::with_capacity(ids.len());
        for batch in ids.chunks(GET_ITEM_BATCH) {
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            let envelope = self.request(Some(mailbox)).get_items(&refs);
            for result in self
                .exchange(Repeat::Always, mailbox, &envelope, parse_get_item)
                .await?
            {
                match result {
                    Ok(item) => items.push(item),
                    // Deleted between FindItem and GetItem: gone, as the next read shows.
                    Err(error) if error.action() == EwsAction::TreatAsDeleted => {}
                    Err(error) => return Err(self.ews(error)),
                }
            }
        }
        Ok(items)
    }

    /// One CalendarView page of [start, end).
    pub async fn find_page(
        &self,
        mailbox: &Mailbox,
        start: i64,
        end: i64,
        max: u32,
    ) -> Result<CalendarPage, ClientError> {
        let envelope = self
            .request(Some(mailbox))
            .find_calendar_view(start, end, max);
        self.exchange(Repeat::Always, mailbox, &envelope, |text| {
            parse_find_item(text).map(|(page, _)| page)
        })
        .await
    }

    /// A pull subscription to the mailbox's calendar, resuming from `from` if given.
    pub async fn subscribe_pull(
        &self,
        mailbox: &Mailbox,
        from: Option<&str>,
        timeout_minutes: u32,
    ) -> Result<Subscribed, ClientError> {
        let envelope = self
            .request(Some(mailbox))
            .subscribe_pull(from, timeout_minutes);
        self.exchange(Repeat::Affine, mailbox, &envelope, parse_subscribe)
            .await
    }

    /// The events of a pull subscription after `from`. A failed subscription (not
    /// found, expired, …) is an error whose action is to resubscribe and resync.
    pub async fn get_events(
        &self,
        mailbox: &Mailbox,
        subscription_id: &str,
        from: &str,
    ) -> Result<EventsReply, ClientError> {
        let envelope = self
            .request(Some(mailbox))
            .get_events(subscription_id, from);
        let mut reply = self
            .exchange(Repeat::Affine, mailbox, &envelope, parse_events)
            .await?;
        if let Some((_, error)) = reply.failed.pop() {
            return Err(self.ews(error));
        }
        Ok(reply)
    }

    /// A streaming subscription to the mailbox's calendar.
    pub async fn subscribe_streaming(&self, mailbox: &Mailbox) -> Result<Subscribed, ClientError> {
        let envelope = self.request(Some(mailbox)).subscribe_streaming();
        self.exchange(Repeat::Affine, mailbox, &envelope, parse_subscribe)
            .await
    }

    /// A push subscription: Exchange POSTs the calendar's events to `url` (the push
    /// listener), at least every `status_frequency_minutes`.
    pub async fn subscribe_push(
        &self,
        mailbox: &Mailbox,
        url: &str,
        from: Option<&str>,
        status_frequency_minutes: u32,
    ) -> Result<Subscribed, ClientError> {
        let envelope =
            self.request(Some(mailbox))
                .subscribe_push(url, from, status_frequency_minutes);
        self.exchange(Repeat::Affine, mailbox, &envelope, parse_subscribe)
            .await
    }

    /// One SyncFolderItems round on the mailbox's calendar. Persist `sync_state` only
    /// after the changes are applied; loop while `includes_last_item_in_range` is false.
    pub async fn sync_folder_items(
        &self,
        mailbox: &Mailbox,
        sync_state: Option<&str>,
        max_changes: u32,
    ) -> Result<SyncRound, ClientError> {
        let envelope = self
            .request(Some(mailbox))
            .sync_folder_items(sync_state, max_changes);
        self.exchange(Repeat::Always, mailbox, &envelope, parse_sync_folder_items)
            .await
    }

    /// Create `item` in the mailbox's calendar (nobody invited); its new id and change
    /// key. Repeated only when the server certainly did not act, so a lost reply
    /// never makes a duplicate.
    pub async fn create_item(
        &self,
        mailbox: &Mailbox,
        item: &CalendarItem,
    ) -> Result<(String, String), ClientError> {
        let envelope = self.request(Some(mailbox)).create_item(item);
        self.exchange(Repeat::OnlyIfNotProcessed, mailbox, &envelope, first_saved)
            .await
    }

    /// Write the basic fields of `item` over the item `id`, if it still has `change_key`;
    /// the new change key. (A repeat after a lost reply meets a new change key and
    /// fails as a conflict instead of writing twice.)
    pub async fn update_item(
        &self,
        mailbox: &Mailbox,
        id: &str,
        change_key: &str,
        item: &CalendarItem,
    ) -> Result<String, ClientError> {
        let envelope = self
            .request(Some(mailbox))
            .update_item(id, change_key, item);
        self.exchange(Repeat::Always, mailbox, &envelope, |text| {
            first_saved(text).map(|(_, key)| key)
        })
        .await
    }

    /// Delete the item `id` (to Deleted Items, cancelling nothing).
    pub async fn delete_item(
        &self,
        mailbox: &Mailbox,
        id: &str,
        change_key: Option<&str>,
    ) -> Result<(), ClientError> {
        let envelope = self.request(Some(mailbox)).delete_item(id, change_key);
        self.exchange(Repeat::Always, mailbox, &envelope, all_succeeded)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_is_halved_until_a_minute_or_the_depth_limit() {
        assert_eq!(halves((0, 7200, 0)), Some([(0, 3600, 1), (3600, 7200, 1)]));
        assert_eq!(halves((0, 61, 3)), Some([(0, 30, 4), (30, 61, 4)]));
        assert_eq!(halves((0, 60, 0)), None, "one minute is not split");
        assert_eq!(halves((0, 86_400, MAX_SPLITS)), None, "deep enough");
        assert!(halves((0, 86_400, MAX_SPLITS - 1)).is_some());
    }

    #[test]
    fn a_write_reply_without_a_saved_item_is_unexpected() {
        let empty = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
            xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><s:Body>
            <m:CreateItemResponse><m:ResponseMessages/></m:CreateItemResponse>
            </s:Body></s:Envelope>"#;
        assert_eq!(
            first_saved(empty),
            Err(EwsError::Unexpected {
                expected: "a response message"
            })
        );
    }
}
