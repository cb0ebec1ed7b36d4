// Package templates holds the per-product templates installed to
// /usr/share/pcheck/templates: for each product a pfile, a restart script
// and a README. Its tests load every pfile with the real parser and run
// every restart script against a fake of its product.
package templates
