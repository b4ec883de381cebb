// Behaviour of the shell's pages, kept out of the HTML: the CSP allows no inline script.
//
// Nothing here yet. The language form used to submit itself as soon as a language was chosen;
// with the keyboard that changed the page on the first arrow key (WCAG 2.1, 3.2.2 "On Input"),
// so the form now has its button, for everyone.
