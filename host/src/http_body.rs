//! Reading an HTTP reply's body with a size cap, for every HTTP read the host makes
//! (EWS, Autodiscover, the telephony target, the token endpoint). The cap holds
//! whether or not the reply declares its length: a chunked reply is read chunk by
//! chunk and given up as soon as it passes the cap, so a hostile or broken server
//! cannot make Calvert buffer more than the cap.

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(
        "the reply is larger than Calvert accepts ({limit} bytes{declared}): the server or a proxy in between sends more than any valid answer; check it"
    )]
    TooLarge {
        limit: usize,
        /// ", it declares N" when the reply said its length.
        declared: String,
    },
    #[error("the reply was cut off while it was read: {0}")]
    Transport(#[from] reqwest::Error),
}

/// The whole body of `response`, or [`BodyError::TooLarge`] as soon as it passes
/// `limit` bytes (before reading anything when the declared length is over it).
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if let Some(declared) = response.content_length()
        && declared > limit as u64
    {
        return Err(BodyError::TooLarge {
            limit,
            declared: format!(", it declares {declared}"),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge {
                limit,
                declared: String::new(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The body as text (invalid UTF-8 replaced), capped like [`read_capped`].
pub async fn read_text_capped(
    response: reqwest::Response,
    limit: usize,
) -> Result<String, BodyError> {
    let body = read_capped(response, limit).await?;
    Ok(match String::from_utf8(body) {
        Ok(text) => text,
        Err(invalid) => String::from_utf8_lossy(invalid.as_bytes()).into_owned(),
    })
}
