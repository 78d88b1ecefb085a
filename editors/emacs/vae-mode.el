;;; vae-mode.el --- major mode for vaec's model files (*.vae)  -*- lexical-binding: t -*-

;;; Commentary:
;; Highlighting and comment syntax for the .vae language (docs/language.md).
;; tests/editors.sh checks that it names every keyword of lexer/lexer.l and
;; every layer, distribution and estimator that the checker knows.
;; Install: put this file on `load-path' and (require 'vae-mode).

;;; Code:

(defgroup vae nil "vaec's model files." :group 'languages)

(defcustom vae-indent-offset 4 "Indentation of a network's body." :type 'integer :group 'vae)

(defconst vae-keywords
  '("model" "data" "latent" "encoder" "decoder" "baseline" "control" "estimator" "train" "return" "param" "prior"))
(defconst vae-types '("binary" "real" "label" "dynamic"))
(defconst vae-functions
  '("dense" "conv2d" "conv_transpose2d" "flatten" "reshape" "concat" "onehot"
    "relu" "tanh" "sigmoid" "softplus" "elu" "exp" "leaky_relu"))
(defconst vae-distributions '("normal" "bernoulli" "categorical"))
(defconst vae-estimators
  '("analytic" "uniform" "reinforce" "reparam" "iwae" "exact" "vimco" "gumbel" "arm" "disarm" "renyi" "rws" "nvil" "sum_and_sample" "relax" "rebar" "elbo"))
(defconst vae-constants '("true" "false" "loo" "dreg" "adam" "sgd"))

(defconst vae-font-lock-keywords
  `((,(regexp-opt vae-keywords 'symbols) . font-lock-keyword-face)
    (,(regexp-opt vae-types 'symbols) . font-lock-type-face)
    (,(regexp-opt vae-distributions 'symbols) . font-lock-type-face)
    (,(regexp-opt vae-functions 'symbols) . font-lock-builtin-face)
    (,(regexp-opt vae-estimators 'symbols) . font-lock-function-name-face)
    (,(regexp-opt vae-constants 'symbols) . font-lock-constant-face)
    ("\\_<[0-9]+\\(?:\\.[0-9]*\\)?\\(?:[eE][-+]?[0-9]+\\)?\\_>" . font-lock-constant-face)))

(defvar vae-mode-syntax-table
  (let ((table (make-syntax-table)))
    (modify-syntax-entry ?# "<" table)
    (modify-syntax-entry ?\n ">" table)
    (modify-syntax-entry ?_ "_" table)
    (modify-syntax-entry ?\" "\"" table)
    table)
  "Syntax table of `vae-mode': # starts a comment that runs to the end of the line.")

(defun vae-indent-line ()
  "Indent the current line: one step inside each open brace."
  (interactive)
  (let ((depth (save-excursion (beginning-of-line) (car (syntax-ppss)))))
    (save-excursion
      (beginning-of-line)
      (when (looking-at "[ \t]*[])}]") (setq depth (max 0 (1- depth)))))
    (indent-line-to (* depth vae-indent-offset))))

;;;###autoload
(define-derived-mode vae-mode prog-mode "vae"
  "Major mode for vaec's model files (*.vae)."
  :syntax-table vae-mode-syntax-table
  (setq-local comment-start "# ")
  (setq-local comment-start-skip "#+[ \t]*")
  (setq-local comment-end "")
  (setq-local indent-line-function #'vae-indent-line)
  (setq-local font-lock-defaults '(vae-font-lock-keywords)))

;;;###autoload
(add-to-list 'auto-mode-alist '("\\.vae\\'" . vae-mode))

(provide 'vae-mode)
;;; vae-mode.el ends here
