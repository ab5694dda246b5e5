! A Fortran program serving its in-process engine: a second client connects over TCP
! and over a Unix socket, reads what the program put and writes back; stopping the
! server refuses new connections while the in-process client keeps working.
! Run by CTest; prints "Fortran server: all checks passed".
program test_server
  use, intrinsic :: iso_fortran_env, only: real64
  use insitu
  implicit none
  type(insitu_client) :: sim, tcp, unix
  type(insitu_server) :: server
  real(real64) :: u(4, 3), back(4, 3)
  integer :: ierr, i, port, failures
  character(len=32) :: address
  character(len=*), parameter :: sock = "/tmp/insitu-fortran-test-server.sock"
  failures = 0
  u = reshape([(real(i, real64) / 8, i = 1, 12)], [4, 3])

  call sim%connect("inproc")
  call sim%start_server(server, unix_path=sock, tcp_address="127.0.0.1:0")
  port = server%tcp_port()
  if (port <= 0) call fail("a free TCP port")
  write(address, '(a, i0)') "127.0.0.1:", port
  call sim%put_tensor("u", u)

  call tcp%connect(trim(address))
  call tcp%get_tensor("u", back)
  if (any(back /= u)) call fail("TCP client reads what the simulation put")
  call tcp%put_tensor("v", 2 * u)
  call sim%get_tensor("v", back)
  if (any(back /= 2 * u)) call fail("the simulation reads what the TCP client put")

  call unix%connect("unix://" // sock)
  call unix%get_tensor("v", back)
  if (any(back /= 2 * u)) call fail("Unix-socket client reads the same store")

  call tcp%close()
  call unix%close()
  call server%stop()
  call tcp%connect(trim(address), ierr=ierr)
  if (ierr /= INSITU_STATUS_IO) call fail("no TCP connection after stop")
  call server%stop(ierr=ierr)
  if (ierr /= INSITU_STATUS_OK) call fail("stopping twice is a no-op")
  if (server%tcp_port() /= 0) call fail("a stopped server has no port")
  call sim%get_tensor("u", back)
  if (any(back /= u)) call fail("the in-process client works after stop")

  call tcp%start_server(server, tcp_address="127.0.0.1:0", ierr=ierr)
  if (ierr == INSITU_STATUS_OK) call fail("a client that is not connected cannot serve")

  if (failures > 0) then
    print '(i0, a)', failures, " checks failed"
    error stop 1
  end if
  print '(a)', "Fortran server: all checks passed"
contains
  subroutine fail(what)
    character(len=*), intent(in) :: what
    print '(2a)', "FAILED: ", what, " (", insitu_last_error(), ")"
    failures = failures + 1
  end subroutine fail
end program test_server
