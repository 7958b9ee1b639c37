"""Scripts that download and prepare the full reproduction data (DIV2K, Kodak24); see README.md here."""
