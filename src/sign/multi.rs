//! Signing with several keys at once, as a repository does while it rotates from one key to
//! another: one `InRelease` carrying a signature of each key (as Debian's own carries one per
//! archive key), one detached signature file holding a signature packet of each, and one
//! armored keyring holding each public key. With one key each is what [`Signer`] alone
//! makes. A client that holds any one of the keys accepts the files: gpgv, sqv and librepo
//! need one good signature from a key they trust.

use std::io::Cursor;

use anyhow::{Result, anyhow};
use pgp::armor::BlockType;
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey,
};
use pgp::packet::SignatureType;
use pgp::ser::Serialize;
use pgp::types::SigningKey;

use super::Signer;

/// Bytes that serialize as themselves (packets already serialized), for the armor writer.
struct Raw(Vec<u8>);

impl Serialize for Raw {
    fn to_writer<W: std::io::Write>(&self, writer: &mut W) -> pgp::errors::Result<()> {
        writer.write_all(&self.0)?;
        Ok(())
    }

    fn write_len(&self) -> usize {
        self.0.len()
    }
}

fn armored(bytes: Vec<u8>, typ: BlockType) -> Result<String> {
    let mut out = Vec::new();
    pgp::armor::write(&Raw(bytes), typ, &mut out, None, true)
        .map_err(|e| anyhow!("armoring: {e}"))?;
    String::from_utf8(out).map_err(|e| anyhow!("armoring: {e}"))
}

/// `text` clearsigned by each of `signers`, in their order (`InRelease`).
pub fn clearsign(signers: &[&Signer], text: &str) -> Result<String> {
    if let [one] = signers {
        return one.clearsign(text);
    }
    let mut configs = Vec::new();
    for signer in signers {
        let key: &dyn SigningKey = match signer.subkey {
            Some(i) => &signer.key.secret_subkeys[i].key,
            None => &signer.key.primary_key,
        };
        configs.push((
            signer,
            key,
            signer.config(key, SignatureType::Text, signer.time)?,
        ));
    }
    let msg = CleartextSignedMessage::new_many(text, |normalized| {
        configs
            .into_iter()
            .map(|(signer, key, config)| {
                config.sign(&Box::new(key), &signer.password, normalized.as_bytes())
            })
            .collect()
    })
    .map_err(|e| anyhow!("clearsigning failed: {e}"))?;
    msg.to_armored_string(ArmorOptions::default())
        .map_err(|e| anyhow!("armoring a clearsigned text: {e}"))
}

/// Detached signatures of `data` by each of `signers`, in their order, as one armored block
/// (`Release.gpg`, `repomd.xml.asc`).
pub fn detached_armored(signers: &[&Signer], data: &[u8]) -> Result<String> {
    if let [one] = signers {
        return one.detached_armored(data);
    }
    let mut packets = Vec::new();
    for signer in signers {
        packets.extend(signer.detached_binary(data)?);
    }
    armored(packets, BlockType::Signature)
}

/// The public keys of `signers`, in their order, as one armored keyring (`mattermost.asc`).
pub fn public_armored(signers: &[&Signer]) -> Result<String> {
    if let [one] = signers {
        return one.public_armored();
    }
    let mut bytes = Vec::new();
    for signer in signers {
        bytes.extend(signer.public_binary()?);
    }
    armored(bytes, BlockType::PublicKey)
}

/// True when `sig` over `key` verifies with `key`'s primary key or one of its subkeys.
fn verifies(sig: &DetachedSignature, key: &SignedPublicKey, data: &[u8]) -> bool {
    sig.verify(key, data).is_ok()
        || key
            .public_subkeys
            .iter()
            .any(|s| sig.verify(&s.key, data).is_ok())
}

/// True when one of the signatures in the detached signature file `signature` (armored or
/// binary) verifies `data` with `signer`'s key.
pub fn detached_signed_by(signature: &[u8], data: &[u8], signer: &Signer) -> bool {
    let key = signer.public();
    let sigs: Vec<DetachedSignature> = if signature.starts_with(b"-----BEGIN") {
        match DetachedSignature::from_armor_many(Cursor::new(signature)) {
            Ok((sigs, _)) => sigs.flatten().collect(),
            Err(_) => return false,
        }
    } else {
        match DetachedSignature::from_bytes_many(Cursor::new(signature)) {
            Ok(sigs) => sigs.flatten().collect(),
            Err(_) => return false,
        }
    };
    sigs.iter().any(|sig| verifies(sig, &key, data))
}

/// The text the clearsigned `armored` signs, when one of its signatures verifies with
/// `signer`'s key; `None` otherwise.
pub fn cleartext_signed_by(armored: &str, signer: &Signer) -> Option<String> {
    let msg = Clearsigned::parse(armored).ok()?;
    msg.signed_by(signer).then(|| msg.text().to_string())
}

/// A clearsigned text, parsed once; its signatures are checked on demand.
pub struct Clearsigned {
    msg: CleartextSignedMessage,
    /// What it signs, line ends as `\n`.
    text: String,
}

impl Clearsigned {
    /// Parses the clearsigned `armored` (its signatures not checked yet).
    pub fn parse(armored: &str) -> Result<Self> {
        let (msg, _) = CleartextSignedMessage::from_string(armored)
            .map_err(|e| anyhow!("not a clearsigned OpenPGP message: {e}"))?;
        let text = msg.signed_text().replace("\r\n", "\n");
        Ok(Clearsigned { msg, text })
    }

    /// The text it signs (for a reader that holds no key: `repo list`, `sync --plan`).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when one of its signatures verifies with `signer`'s key.
    pub fn signed_by(&self, signer: &Signer) -> bool {
        let key = signer.public();
        let signed = self.msg.signed_text();
        self.msg.signatures().iter().any(|sig| {
            let sig = DetachedSignature::new(sig.clone());
            verifies(&sig, &key, signed.as_bytes())
        })
    }

    /// How many signatures it carries.
    pub fn count(&self) -> usize {
        self.msg.signatures().len()
    }
}

/// Environment variable holding the armored secret key a repository rotates from (for CI
/// secrets), when `--rotate-from` names no file.
pub const ROTATE_FROM_VAR: &str = "MM_PKG_ROTATE_FROM_KEY";
/// Environment variable holding that key's passphrase (else [`super::PASSPHRASE_VAR`]'s is
/// tried).
pub const ROTATE_FROM_PASSPHRASE_VAR: &str = "MM_PKG_ROTATE_FROM_PASSPHRASE";

/// The old key of a rotation: `--rotate-from FILE`, else `MM_PKG_ROTATE_FROM_KEY` when
/// `wanted` (the flag was given as `env`), checked as `--sign-key` is.
pub fn rotation_key(file: Option<&std::path::Path>, source_date: u64) -> Result<Option<Signer>> {
    let (armored, origin) = match file {
        Some(path) if path.as_os_str() != "env" => (
            std::fs::read_to_string(path)
                .map_err(|e| anyhow!("reading the old signing key {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        Some(_) => match std::env::var(ROTATE_FROM_VAR) {
            Ok(v) if !v.trim().is_empty() => (v, format!("${ROTATE_FROM_VAR}")),
            _ => anyhow::bail!("--rotate-from env: {ROTATE_FROM_VAR} is empty or not set"),
        },
        None => return Ok(None),
    };
    let passphrase = std::env::var(ROTATE_FROM_PASSPHRASE_VAR)
        .or_else(|_| std::env::var(super::PASSPHRASE_VAR))
        .ok();
    let signer = Signer::from_armored(&armored, passphrase.as_deref(), source_date, super::now())
        .map_err(|e| anyhow!("old signing key {origin}: {e:#}"))?;
    Ok(Some(signer))
}
