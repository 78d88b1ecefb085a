" vaec's model files
autocmd BufRead,BufNewFile *.vae setfiletype vae
