// Package render turns deadnode's typed results into what a person or a
// program reads: one table model (columns that know how they may shrink,
// rows of cells) printed to fit a terminal, and JSON or JSON Lines written
// from the typed values themselves, so every command gets the same three
// outputs and a new output (the HTML report) is one more renderer, not one
// per command.
//
// Everything from the evidence is hostile: text bound for a terminal or a
// line-oriented format goes through Clean, which escapes C0 and C1
// controls, DEL, invalid UTF-8 and other unprintable runes (bidi
// overrides, zero-width characters), so no byte of the evidence can move
// the cursor, set a title or hide text. JSON keeps the exact text
// (encoding/json escapes controls itself).
//
// A Table is built by one goroutine and then written; Write is safe to
// call concurrently on different tables.
package render
