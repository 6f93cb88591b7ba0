//! Reads what the apt index needs from a `.deb`: its control fields.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

use super::package::{FileDigests, PackageInfo, check_token, deb_location};

/// Reads `path`'s control file; `location` is where the repository keeps its copy.
pub fn read(path: &Path, digests: FileDigests, component: &str) -> Result<PackageInfo> {
    let text = control_text(path)?;
    let control =
        parse_control(&text).with_context(|| format!("{}: control file", path.display()))?;
    let field = |name: &str| {
        control
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| anyhow!("{}: the control file has no {name} field", path.display()))
    };
    let (name, version, arch) = (field("Package")?, field("Version")?, field("Architecture")?);
    check_token("name", &name, "+.-")?;
    check_token("version", &version, ".+~:-")?;
    check_token("architecture", &arch, "-")?;
    let location = deb_location(component, &name, &version, &arch);
    Ok(PackageInfo {
        name,
        version,
        arch,
        location,
        digests,
        control,
        rpm: None,
    })
}

/// The text of `./control` inside the .deb's control.tar.*.
fn control_text(path: &Path) -> Result<String> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive = ar::Archive::new(BufReader::new(file));
    while let Some(entry) = archive.next_entry() {
        let entry =
            entry.with_context(|| format!("{} is not a .deb (ar archive)", path.display()))?;
        let id = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        let Some(ext) = id.strip_prefix("control.tar") else {
            continue;
        };
        let reader: Box<dyn Read> = match ext {
            "" => Box::new(entry),
            ".gz" => Box::new(flate2::read::GzDecoder::new(entry)),
            ".xz" => Box::new(liblzma::read::XzDecoder::new(entry)),
            ".zst" => Box::new(zstd::stream::read::Decoder::new(entry)?),
            other => bail!(
                "{}: unknown control archive compression `{other}`",
                path.display()
            ),
        };
        let mut tar = tar::Archive::new(reader);
        for member in tar
            .entries()
            .with_context(|| format!("reading {} in {}", id, path.display()))?
        {
            let mut member = member?;
            let name = member.path()?.to_string_lossy().into_owned();
            if name == "./control" || name == "control" {
                let mut text = String::new();
                member
                    .read_to_string(&mut text)
                    .with_context(|| format!("{}: control is not UTF-8", path.display()))?;
                return Ok(text);
            }
        }
        bail!("{}: {id} has no control file", path.display());
    }
    bail!("{} has no control.tar member: not a .deb", path.display())
}

/// Fields of a deb822 paragraph in order; continuation lines stay in the value.
pub fn parse_control(text: &str) -> Result<Vec<(String, String)>> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if fields.is_empty() {
                continue;
            }
            break;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = fields.last_mut() else {
                bail!("a continuation line comes before any field");
            };
            value.push('\n');
            value.push_str(line);
        } else {
            let Some((name, value)) = line.split_once(':') else {
                bail!("line `{line}` is not `Field: value`");
            };
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    Ok(fields)
}
