// Constants of well-known cryptographic algorithms. Legitimate software has them too: this
// says what a binary can do (encrypt, hash), which matters for ransomware and C2 triage.

rule Crypto_AES_Sbox : crypto
{
    meta:
        description = "AES (Rijndael) S-box or inverse S-box"
        author = "nestbox"
        algorithm = "AES"

    strings:
        $sbox = { 63 7C 77 7B F2 6B 6F C5 30 01 67 2B FE D7 AB 76 }
        $inv = { 52 09 6A D5 30 36 A5 38 BF 40 A3 9E 81 F3 D7 FB }

    condition:
        any of them
}

rule Crypto_SHA256_Constants : crypto
{
    meta:
        description = "SHA-256 round constants (K) or initial hash values"
        author = "nestbox"
        algorithm = "SHA-256"

    strings:
        $k_le = { 98 2F 8A 42 91 44 37 71 CF FB C0 B5 A5 DB B5 E9 }
        $k_be = { 42 8A 2F 98 71 37 44 91 B5 C0 FB CF E9 B5 DB A5 }
        $h_le = { 67 E6 09 6A 85 AE 67 BB 72 F3 6E 3C 3A F5 4F A5 }

    condition:
        any of them
}

rule Crypto_MD5_Constants : crypto
{
    meta:
        description = "MD5 sine-table constants"
        author = "nestbox"
        algorithm = "MD5"

    strings:
        $t_le = { 78 A4 6A D7 56 B7 C7 E8 DB 70 20 24 EE CE BD C1 }

    condition:
        $t_le
}

rule Crypto_CRC32_Table : crypto
{
    meta:
        description = "CRC32 lookup table"
        author = "nestbox"
        algorithm = "CRC32"

    strings:
        $t = { 00 00 00 00 96 30 07 77 2C 61 0E EE BA 51 09 99 }

    condition:
        $t
}

rule Crypto_Blowfish_Parray : crypto
{
    meta:
        description = "Blowfish P-array initial values (digits of pi)"
        author = "nestbox"
        algorithm = "Blowfish"

    strings:
        $p_le = { 88 6A 3F 24 D3 08 A3 85 2E 8A 19 13 44 73 70 03 }

    condition:
        $p_le
}

rule Crypto_ChaCha_Salsa_Sigma : crypto
{
    meta:
        description = "ChaCha/Salsa20 constant \"expand 32-byte k\""
        author = "nestbox"
        algorithm = "ChaCha20/Salsa20"

    strings:
        $s = "expand 32-byte k"
        $s16 = "expand 16-byte k"

    condition:
        any of them
}

rule Crypto_RSA_Key_Blob : crypto
{
    meta:
        description = "Windows CryptoAPI RSA key blob (RSA1/RSA2 magic after a PUBLICKEYBLOB/PRIVATEKEYBLOB header)"
        author = "nestbox"
        algorithm = "RSA"

    strings:
        $pub = { 06 02 00 00 00 A4 00 00 52 53 41 31 }
        $priv = { 07 02 00 00 00 A4 00 00 52 53 41 32 }

    condition:
        any of them
}
