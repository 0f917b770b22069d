//! A TCP echo server on monoio, written the usual way for a thread-per-core runtime: one
//! io_uring runtime per thread, each with its own `SO_REUSEPORT` listener on the same port,
//! one task per connection.
//!
//! Usage: echo-monoio PORT [THREADS]   (THREADS defaults to 2)

use monoio::buf::IoBuf;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{ListenerOpts, TcpListener};

fn serve(port: u16) {
    let mut runtime = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .expect("an io_uring runtime");
    runtime.block_on(async move {
        let opts = ListenerOpts::new().reuse_port(true).reuse_addr(true);
        let listener = TcpListener::bind_with_config(("127.0.0.1", port), &opts).expect("bind");
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { continue };
            let _ = socket.set_nodelay(true);
            monoio::spawn(async move {
                let mut buffer = vec![0u8; 4096];
                loop {
                    let (result, read) = socket.read(buffer).await;
                    buffer = read;
                    let n = match result {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let (result, written) = socket.write_all(buffer.slice(..n)).await;
                    buffer = written.into_inner();
                    if result.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 =
        args.next().and_then(|p| p.parse().ok()).expect("usage: echo-monoio PORT [THREADS]");
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(2);
    let handles: Vec<_> = (0..threads).map(|_| std::thread::spawn(move || serve(port))).collect();
    println!("listening on 127.0.0.1:{port}");
    for handle in handles {
        let _ = handle.join();
    }
}
