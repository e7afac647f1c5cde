//! Project automation entry point (`cargo xtask ...`).

fn main() -> anyhow::Result<()> {
    Ok(())
}
