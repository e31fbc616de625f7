//! First-run passphrases: N random words from the BIP-39 English list (2048 words, MIT
//! licensed, trezor/python-mnemonic), 11 bits of entropy per word, joined by '-'.

const WORDLIST: &str = include_str!("wordlist.txt");

pub fn generate(words: u32) -> std::io::Result<String> {
    let list: Vec<&str> = WORDLIST.lines().collect();
    debug_assert_eq!(list.len(), 2048);
    let mut out = String::new();
    for i in 0..words {
        let mut buf = [0u8; 2];
        fill_random(&mut buf)?;
        // 2048 is a power of two, so masking 11 bits is unbiased.
        let index = usize::from(u16::from_le_bytes(buf) & 0x07ff);
        if i > 0 {
            out.push('-');
        }
        out.push_str(list[index]);
    }
    Ok(out)
}

pub fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty())?;
        filled += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn makes_the_requested_number_of_listed_words() {
        let p = super::generate(4).unwrap();
        let words: Vec<&str> = p.split('-').collect();
        assert_eq!(words.len(), 4);
        assert!(words.iter().all(|w| super::WORDLIST.lines().any(|l| l == *w)));
        assert_ne!(super::generate(8).unwrap(), super::generate(8).unwrap());
    }
}
