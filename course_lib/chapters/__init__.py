"""Chapter helpers: each chapter's exercise references, the rules that train with a learner's
function, and the chapter's demonstrations. General machinery lives in the core modules."""
