package detect

// The phone detector's calling-code table comes from libphonenumber's metadata.
//go:generate go run ./internal/genphone -out phonemeta.go
