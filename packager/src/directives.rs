//! The delivery directives of a media playlist request (RFC 8216bis §6.2.5): `_HLS_msn`,
//! `_HLS_part` and `_HLS_skip`, read from the request's query pairs. Parsed here and
//! nowhere else, so that every node and every kind of content refuses the same requests
//! with the same words.

use crate::BlockRequest;

/// What a media playlist request asks of the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Directives {
    /// `_HLS_msn` (and `_HLS_part`): hold the answer until that segment (part) exists.
    pub block: Option<BlockRequest>,
    /// `_HLS_skip=YES` or `v2`: a playlist delta update.
    pub skip: bool,
}

/// A directive the server cannot honour: the request gets 400 with these words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub enum DirectiveError {
    Msn,
    Part,
    PartWithoutMsn,
    Skip,
    /// The directive named appears more than once.
    Repeated(&'static str),
}

impl DirectiveError {
    /// The words a 400 answer carries.
    pub fn message(&self) -> &'static str {
        match self {
            DirectiveError::Msn => "_HLS_msn is not a number",
            DirectiveError::Part => "_HLS_part is not a number",
            DirectiveError::PartWithoutMsn => "_HLS_part without _HLS_msn",
            DirectiveError::Skip => "_HLS_skip must be YES or v2",
            DirectiveError::Repeated(_) => "a delivery directive appears twice",
        }
    }
}

impl Directives {
    /// Reads the directives among a request's query pairs (already percent-decoded); any
    /// other pair (a token, a signature, a cache buster) is ignored.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, DirectiveError> {
        let (mut msn, mut part, mut skip) = (None, None, None);
        for (key, value) in pairs {
            let (slot, name) = match key {
                "_HLS_msn" => (&mut msn, "_HLS_msn"),
                "_HLS_part" => (&mut part, "_HLS_part"),
                "_HLS_skip" => (&mut skip, "_HLS_skip"),
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(DirectiveError::Repeated(name));
            }
        }
        // Digits only: `+5` and ` 5` are not numbers a client sends.
        let number = |v: &str, e| match v.bytes().all(|b| b.is_ascii_digit()) {
            true => v.parse::<u64>().map_err(|_| e),
            false => Err(e),
        };
        let msn = msn.map(|v| number(v, DirectiveError::Msn)).transpose()?;
        let part = part.map(|v| number(v, DirectiveError::Part)).transpose()?;
        let skip = match skip {
            None => false,
            Some("YES") | Some("v2") => true,
            Some(_) => return Err(DirectiveError::Skip),
        };
        let block = match (msn, part) {
            (None, Some(_)) => return Err(DirectiveError::PartWithoutMsn),
            (None, None) => None,
            (Some(msn), part) => Some(BlockRequest { msn, part }),
        };
        Ok(Directives { block, skip })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_are_read_and_bad_ones_refused() {
        let parse = |q: &[(&'static str, &'static str)]| Directives::parse(q.iter().copied());
        assert_eq!(parse(&[("token", "x")]), Ok(Directives::default()));
        assert_eq!(
            parse(&[("_HLS_msn", "12"), ("_HLS_part", "3"), ("_HLS_skip", "v2")]),
            Ok(Directives { block: Some(BlockRequest { msn: 12, part: Some(3) }), skip: true })
        );
        assert_eq!(parse(&[("_HLS_part", "3")]), Err(DirectiveError::PartWithoutMsn));
        assert_eq!(parse(&[("_HLS_msn", "+3")]), Err(DirectiveError::Msn));
        assert_eq!(parse(&[("_HLS_msn", "99999999999999999999999")]), Err(DirectiveError::Msn));
        assert_eq!(parse(&[("_HLS_msn", "1"), ("_HLS_part", "")]), Err(DirectiveError::Part));
        assert_eq!(parse(&[("_HLS_skip", "yes")]), Err(DirectiveError::Skip));
        assert_eq!(parse(&[("_HLS_msn", "1"), ("_HLS_msn", "2")]), Err(DirectiveError::Repeated("_HLS_msn")));
    }
}
