//! The signature header: digests of the main header, the package size and, when a
//! [`HeaderSigner`] is given, an OpenPGP signature over the main header (RSAHEADER for RSA
//! keys, DSAHEADER for EdDSA keys, as rpmsign writes them). The writer knows no keys: the
//! signer is a callback implemented elsewhere (`crate::sign`).

use anyhow::Result;
use sha2::{Digest, Sha256};

use super::header::{Header, Value, tag};

/// Signs an RPM main header.
pub trait HeaderSigner: Send + Sync {
    /// The signature-header tag for this key ([`tag::SIG_RSAHEADER`] or
    /// [`tag::SIG_DSAHEADER`]) and a binary OpenPGP signature packet over `header`, dated
    /// `time` (the package's build time).
    fn sign_header(&self, header: &[u8], time: u32) -> Result<(u32, Vec<u8>)>;
}

/// The serialized signature header (without its padding) for the main header `header` of a
/// package whose header and payload are `total` bytes together, signed as of `time`.
pub fn signature_header(
    header: &[u8],
    total: u32,
    signer: Option<&dyn HeaderSigner>,
    time: u32,
) -> Result<Vec<u8>> {
    let mut signature = Header::new();
    signature
        .set(
            tag::SIG_SHA1,
            Value::Str(hex::encode(sha1::Sha1::digest(header))),
        )
        .set(
            tag::SIG_SHA256,
            Value::Str(hex::encode(Sha256::digest(header))),
        )
        .set(tag::SIG_SIZE, Value::Int32(vec![total]));
    if let Some(signer) = signer {
        let (sig_tag, packet) = signer.sign_header(header, time)?;
        signature.set(sig_tag, Value::Bin(packet));
    }
    Ok(signature.to_bytes(tag::HEADERSIGNATURES))
}
