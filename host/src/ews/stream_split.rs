//! The streaming splitter: a GetStreamingEvents body is one SOAP envelope after
//! another, and [`StreamSplitter`] hands out each as soon as its root element closes.
//!
//! The scan is incremental. It remembers where it stopped and in which lexical
//! context (text, a tag, an attribute value, a comment, CDATA, a processing
//! instruction, a declaration), so every byte is examined once however the body is
//! chunked, and markup inside comments, CDATA, processing instructions and attribute
//! values does not count. It counts element depth, so an envelope ends where its
//! root element closes. It is not a parser: each envelope is parsed, and checked,
//! afterwards. All markup is ASCII, so scanning the bytes of UTF-8 text only ever
//! stops on character boundaries.

use super::xml::XmlError;

/// Splits a GetStreamingEvents connection's body, where the server writes one
/// complete SOAP envelope after another, into whole envelopes as they complete.
#[derive(Debug)]
pub struct StreamSplitter {
    /// Text since the end of the last envelope handed out.
    buffer: String,
    /// How far into `buffer` the scan has come.
    scanned: usize,
    scan: Scan,
    limit: usize,
}

impl StreamSplitter {
    /// `limit`: the most one envelope may hold before the stream is given up as broken.
    pub fn new(limit: usize) -> Self {
        StreamSplitter {
            buffer: String::new(),
            scanned: 0,
            scan: Scan::default(),
            limit,
        }
    }

    /// Add what arrived; returns every envelope now complete, in order.
    pub fn push(&mut self, chunk: &str) -> Result<Vec<String>, XmlError> {
        self.buffer.push_str(chunk);
        let from = self.scanned;
        let mut found = Vec::new();
        let unscanned = self.buffer.as_bytes().get(from..).unwrap_or_default();
        for (offset, &byte) in unscanned.iter().enumerate() {
            if let Some(envelope) = self.scan.step(byte, from + offset) {
                found.push(envelope);
            }
        }
        self.scanned = self.buffer.len();
        let mut complete = Vec::with_capacity(found.len());
        for (start, end) in &found {
            let envelope = self
                .buffer
                .get(*start..*end)
                .ok_or_else(|| XmlError::Malformed {
                    detail: "an envelope of the stream does not end between characters".into(),
                    position: 0,
                })?;
            complete.push(envelope.to_string());
        }
        if let Some(&(_, end)) = found.last() {
            self.buffer.drain(..end);
            self.scanned -= end;
            self.scan.shift(end);
        }
        if self.buffer.len() > self.limit {
            return Err(XmlError::TooLarge {
                bytes: self.buffer.len(),
                limit: self.limit,
            });
        }
        Ok(complete)
    }

    /// What is buffered but not yet a whole envelope.
    pub fn pending(&self) -> usize {
        self.buffer.trim().len()
    }

    /// How many bytes the scan has examined since the splitter was made.
    #[cfg(test)]
    fn examined(&self) -> u64 {
        self.scan.examined
    }
}

/// The lexical context between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Lexer {
    /// Character data, or what lies between envelopes.
    #[default]
    Text,
    /// Just after `<`.
    Open,
    /// Inside a start tag; `slash`: the last byte outside quotes was `/`.
    StartTag { quote: Option<u8>, slash: bool },
    /// Inside an end tag.
    EndTag,
    /// Just after `<!`.
    Bang,
    /// After `<!-`.
    CommentOpen,
    /// After `<!` and this many bytes of `[CDATA[`.
    CDataOpen { matched: usize },
    /// Inside `<!-- … -->`; `dashes`: how many `-` came last (at most 2).
    Comment { dashes: u8 },
    /// Inside `<![CDATA[ … ]]>`; `brackets`: how many `]` came last (at most 2).
    CData { brackets: u8 },
    /// Inside `<? … ?>`; `question`: the last byte was `?`.
    Instruction { question: bool },
    /// Inside another `<! … >` (a DOCTYPE, with its internal subset in brackets).
    Declaration { subset: bool, quote: Option<u8> },
}

const CDATA_OPEN: &[u8] = b"[CDATA[";

/// The scan's state: its lexical context and how deep in the envelope it is.
#[derive(Debug, Default)]
struct Scan {
    lexer: Lexer,
    /// Open elements of the current envelope.
    depth: usize,
    /// Where the last `<` was.
    tag_at: usize,
    /// Where the current envelope's root element starts, once it has.
    root_at: Option<usize>,
    #[cfg(test)]
    examined: u64,
}

impl Scan {
    /// Examine the byte at `at`; the envelope's start and end when it completes it.
    fn step(&mut self, byte: u8, at: usize) -> Option<(usize, usize)> {
        #[cfg(test)]
        {
            self.examined += 1;
        }
        use Lexer::*;
        self.lexer = match (self.lexer, byte) {
            (Text, b'<') => {
                self.tag_at = at;
                Open
            }
            (Text, _) => Text,
            (Open, b'!') => Bang,
            (Open, b'?') => Instruction { question: false },
            (Open, b'/') => EndTag,
            (Open, _) => {
                if self.depth == 0 {
                    self.root_at = Some(self.tag_at);
                }
                StartTag {
                    quote: None,
                    slash: false,
                }
            }
            (StartTag { quote: None, slash }, b'>') => {
                self.lexer = Text;
                return if slash {
                    self.closed(at)
                } else {
                    self.depth += 1;
                    None
                };
            }
            (StartTag { quote, .. }, _) => StartTag {
                quote: quoted(quote, byte),
                slash: quote.is_none() && byte == b'/',
            },
            (EndTag, b'>') => {
                self.lexer = Text;
                self.depth = self.depth.saturating_sub(1);
                return self.closed(at);
            }
            (EndTag, _) => EndTag,
            (other, _) => unmarked(other, byte),
        };
        None
    }

    /// An element closed at `at`: the envelope, when it was the root.
    fn closed(&mut self, at: usize) -> Option<(usize, usize)> {
        if self.depth > 0 {
            return None;
        }
        self.root_at.take().map(|start| (start, at + 1))
    }

    /// The buffer lost its first `by` bytes.
    fn shift(&mut self, by: usize) {
        self.tag_at = self.tag_at.saturating_sub(by);
        self.root_at = self.root_at.map(|at| at.saturating_sub(by));
    }
}

/// The next lexical context inside markup that holds no elements: comments, CDATA,
/// processing instructions and declarations, and the `<!` that opens them.
fn unmarked(lexer: Lexer, byte: u8) -> Lexer {
    use Lexer::*;
    match (lexer, byte) {
        (Bang, b'-') => CommentOpen,
        (Bang, b'[') => CDataOpen { matched: 1 },
        (CommentOpen, b'-') => Comment { dashes: 0 },
        (CDataOpen { matched }, _) if CDATA_OPEN.get(matched) == Some(&byte) => {
            if matched + 1 == CDATA_OPEN.len() {
                CData { brackets: 0 }
            } else {
                CDataOpen {
                    matched: matched + 1,
                }
            }
        }
        (Bang | CommentOpen | CDataOpen { .. }, b'>') => Text,
        (Bang | CommentOpen | CDataOpen { .. }, _) => Declaration {
            subset: false,
            quote: quoted(None, byte),
        },
        (Comment { dashes }, b'-') => Comment {
            dashes: (dashes + 1).min(2),
        },
        (Comment { dashes: 2 }, b'>') => Text,
        (Comment { .. }, _) => Comment { dashes: 0 },
        (CData { brackets }, b']') => CData {
            brackets: (brackets + 1).min(2),
        },
        (CData { brackets: 2 }, b'>') => Text,
        (CData { .. }, _) => CData { brackets: 0 },
        (Instruction { question: true }, b'>') => Text,
        (Instruction { .. }, _) => Instruction {
            question: byte == b'?',
        },
        (Declaration { subset, quote }, _) => match (quote, byte) {
            (None, b'[') => Declaration {
                subset: true,
                quote,
            },
            (None, b']') => Declaration {
                subset: false,
                quote,
            },
            (None, b'>') if !subset => Text,
            _ => Declaration {
                subset,
                quote: quoted(quote, byte),
            },
        },
        (other, _) => other,
    }
}

/// The quote an attribute value is in after `byte`.
fn quoted(quote: Option<u8>, byte: u8) -> Option<u8> {
    match (quote, byte) {
        (None, b'"' | b'\'') => Some(byte),
        (Some(q), _) if q == byte => None,
        _ => quote,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: &str = r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>"#;
    const CLOSE: &str = "</s:Body></s:Envelope>";

    fn envelope(inside: &str) -> String {
        format!("{OPEN}{inside}{CLOSE}")
    }

    /// The envelope as handed out: from its root element on.
    fn root(envelope: &str) -> &str {
        envelope
            .find("<s:Envelope")
            .and_then(|at| envelope.get(at..))
            .unwrap_or(envelope)
    }

    /// Envelopes with markup that is not markup: in CDATA, a comment, a processing
    /// instruction, an attribute value; and an empty root element.
    fn tricky() -> Vec<String> {
        vec![
            envelope("<t:Subject><![CDATA[</s:Envelope> ]] ]]]></t:Subject>"),
            envelope("<!-- </s:Envelope> - -- --><t:Body>Möte – 5 €</t:Body>"),
            envelope("<?calvert </s:Envelope> ? ?><t:X a=\"</s:Envelope>\" b='>'/>"),
            "<!DOCTYPE s [ <!ENTITY e \">\"> ]><s:Envelope/>".to_string(),
            envelope("<t:Y><t:Y></t:Y></t:Y>"),
        ]
    }

    fn whole(stream: &str) -> Vec<String> {
        let mut splitter = StreamSplitter::new(1 << 20);
        let seen = splitter.push(stream).unwrap();
        assert_eq!(splitter.pending(), 0, "{stream}");
        seen
    }

    #[test]
    fn a_close_tag_inside_cdata_a_comment_or_an_instruction_does_not_end_the_envelope() {
        let envelopes = tricky();
        let stream = envelopes.join("\r\n");
        let seen = whole(&stream);
        let expected: Vec<&str> = envelopes.iter().map(|e| root(e)).collect();
        assert_eq!(seen, expected);
        assert!(seen[3].starts_with("<s:Envelope"), "{:?}", seen[3]);
    }

    #[test]
    fn any_chunking_gives_the_envelopes_of_one_chunk() {
        let stream = tricky().join("\n");
        let expected = whole(&stream);
        let cuts: Vec<usize> = (0..=stream.len())
            .filter(|&at| stream.is_char_boundary(at))
            .collect();
        for (i, &first) in cuts.iter().enumerate() {
            for &second in &cuts[i..] {
                let mut splitter = StreamSplitter::new(1 << 20);
                let mut seen = Vec::new();
                for piece in [(0, first), (first, second), (second, stream.len())] {
                    let text = stream.get(piece.0..piece.1).unwrap();
                    seen.extend(splitter.push(text).unwrap());
                }
                assert_eq!(seen, expected, "cut at bytes {first} and {second}");
                assert_eq!(splitter.pending(), 0);
            }
        }
    }

    #[test]
    fn each_byte_is_examined_once_however_small_the_chunks() {
        let envelope = envelope(&"<t:Subject>Möte i Göteborg</t:Subject>".repeat(27_000));
        assert!(envelope.len() > 1 << 20);
        let mut splitter = StreamSplitter::new(2 << 20);
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4];
        for c in envelope.chars() {
            seen.extend(splitter.push(c.encode_utf8(&mut chunk)).unwrap());
        }
        assert_eq!(seen, [root(&envelope)]);
        let n = envelope.len() as u64;
        assert!(
            splitter.examined() <= 2 * n,
            "{} bytes examined for {n}",
            splitter.examined()
        );
    }
}
