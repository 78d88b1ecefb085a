" Vim syntax file for vaec's model files (*.vae); the language: docs/language.md.
" tests/editors.sh checks that it names every keyword of lexer/lexer.l and every
" layer, distribution and estimator that the checker (parser/check.c) knows.
if exists("b:current_syntax")
  finish
endif

syn keyword vaeKeyword model data latent encoder decoder baseline control estimator train return param prior
syn keyword vaeType binary real label dynamic
syn keyword vaeFunction dense conv2d conv_transpose2d flatten reshape concat onehot
syn keyword vaeFunction relu tanh sigmoid softplus elu exp leaky_relu
syn keyword vaeDistribution normal bernoulli categorical
syn keyword vaeEstimator analytic uniform reinforce reparam iwae exact vimco gumbel arm disarm renyi rws nvil sum_and_sample relax rebar elbo
syn keyword vaeConstant true false loo dreg adam sgd
syn match vaeNumber "\<\d\+\(\.\d*\)\=\([eE][+-]\=\d\+\)\=\>"
syn match vaeNumber "\.\d\+\([eE][+-]\=\d\+\)\=\>"
syn region vaeString start=+"+ end=+"+ oneline
syn keyword vaeTodo TODO FIXME XXX NOTE contained
syn match vaeComment "#.*$" contains=vaeTodo

hi def link vaeKeyword Keyword
hi def link vaeType Type
hi def link vaeFunction Function
hi def link vaeDistribution Type
hi def link vaeEstimator Identifier
hi def link vaeConstant Constant
hi def link vaeNumber Number
hi def link vaeString String
hi def link vaeComment Comment
hi def link vaeTodo Todo

let b:current_syntax = "vae"
